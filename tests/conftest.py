"""Shared fixtures: a seeded generator and the real data in ../shared/data.

Tiny-model presets and seeded data builders that tests import by name are in
``_presets.py`` (this file is not importable as a module).
"""

import os
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The CLI's training commands call tune_malloc(), which changes malloc for the whole
# process; the suite runs them in-process, so it keeps glibc's defaults (test_malloc.py
# checks tune_malloc in subprocesses of its own).
os.environ.setdefault("CALGAN_MALLOC", "system")

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_shared_data():
    env = os.environ.get("CALGAN_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "spikefinder").is_dir() or (path / "cascade").is_dir():
            return path
    return None


SHARED_DATA = _find_shared_data()


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data; tests using it are skipped where it is absent."""
    if SHARED_DATA is None:
        pytest.skip("../shared/data is not present next to the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def spikefinder_dir(shared_data):
    return shared_data / "spikefinder"


@pytest.fixture(scope="session")
def cascade_dir(shared_data):
    return shared_data / "cascade"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def cascade_30hz(cascade_dir):
    """Every CASCADE recording at 30 Hz, loaded once per session (seconds).

    The loader's warnings (spikes dropped outside the recordings, ...) are kept
    as ``load_warnings``, the list of their messages.
    """
    from calgan_sklearn.datasets import load_cascade

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_cascade(cascade_dir, fs=30.0)
    data.load_warnings = [str(w.message) for w in caught]
    return data
