"""pytest configuration for the whole checkout: the package's doctests and tests/.

The fixtures of the test suite are in ``tests/conftest.py``. This file sits at
the root so that it applies to the docstring examples in ``calgan_sklearn/``
as well, however pytest is started (``pytest``, ``pytest calgan_sklearn``).
"""

import re

import pytest

#: Keras estimators: a docstring example that fits one trains a network.
KERAS_ESTIMATORS = ("CalciumAutoencoder", "CalciumGAN", "DeepSpikeInference", "SpikeClassifier")
_FIT_CALL = re.compile(r"\bfit(_transform|_predict)?\(|\bpartial_fit\(")


def trains_a_network(doctest):
    """Whether a docstring example fits one of the package's Keras estimators."""
    source = "".join(example.source for example in doctest.examples)
    return bool(_FIT_CALL.search(source)) and any(
        f"{name}(" in source for name in KERAS_ESTIMATORS
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    """Mark docstring examples that train a network ``slow``, as such tests are."""
    for item in items:
        if isinstance(item, pytest.DoctestItem) and trains_a_network(item.dtest):
            item.add_marker(pytest.mark.slow)
