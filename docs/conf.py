"""Sphinx configuration for calgan_sklearn."""

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import calgan_sklearn

project = "calgan_sklearn"
author = "calgan_sklearn developers"
copyright = "2026, calgan_sklearn developers"
release = calgan_sklearn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
]
autosummary_generate = True
# stubs of names that no longer exist would warn ("not in any toctree"): start afresh
shutil.rmtree(Path(__file__).parent / "generated", ignore_errors=True)
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
templates_path = ["_templates"]
exclude_patterns = ["_build", "generated/*.examples"]
html_theme = "pydata_sphinx_theme"
html_theme_options = {"navigation_with_keys": False}
intersphinx_mapping = {}
nitpicky = False


def _skip_sklearn_members(app, what, name, obj, skip, options):
    """Document our own methods, not the ones scikit-learn adds to every estimator.

    Their docstrings cross-reference scikit-learn's own documentation
    (glossary, user guide labels), which this build does not have.
    """
    module = getattr(obj, "__module__", "") or ""
    if module.startswith("sklearn."):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_members)
