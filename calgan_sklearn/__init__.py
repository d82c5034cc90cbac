"""calgan_sklearn: deep models of calcium imaging data as scikit-learn estimators.

Estimators
----------
DeepSpikeInference
    Fully convolutional spike inference on whole traces (``load_pretrained()``
    returns a trained one).
CalciumGAN, CalciumAutoencoder, SpikeClassifier
    Keras models on fixed-length windows of fluorescence.
SlidingWindowInference
    Turns any window classifier into a trace-level spike-inference estimator.

Subpackages: :mod:`calgan_sklearn.datasets` (loaders, simulator, windows),
:mod:`calgan_sklearn.metrics`, :mod:`calgan_sklearn.baselines` (OASIS, ...),
:mod:`calgan_sklearn.signal` (noise, normalisation, resampling, NaN padding),
:mod:`calgan_sklearn.parallel` (inference over many recordings on a Dask cluster).

Names are imported lazily, so ``import calgan_sklearn`` does not load
TensorFlow until a Keras estimator is used.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "CalciumAutoencoder": "calgan_sklearn.models",
    "CalciumGAN": "calgan_sklearn.models",
    "SpikeClassifier": "calgan_sklearn.models",
    "DeepSpikeInference": "calgan_sklearn.models",
    "SlidingWindowInference": "calgan_sklearn.models",
    "load_model": "calgan_sklearn.models",
    "load_pretrained": "calgan_sklearn.pretrained",
    "SpikeInferenceMixin": "calgan_sklearn.base",
    "tune_malloc": "calgan_sklearn._malloc",
    "baselines": None,
    "datasets": None,
    "metrics": None,
    "signal": None,
    "models": None,
    "pretrained": None,
    "benchmark": None,
    "evaluation": None,
    "parallel": None,
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'calgan_sklearn' has no attribute {name!r}")
    module = _LAZY[name]
    if module is None:
        value = importlib.import_module(f"calgan_sklearn.{name}")
    else:
        attr = "load" if name == "load_model" else name
        value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
