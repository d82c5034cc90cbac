"""Keras estimators on windows of calcium traces.

- :class:`SpikeClassifier` — convolutional window classifier (spike / no spike,
  spike counts, any labels); can start from a fitted GAN's critic.
- :class:`CalciumAutoencoder` — (variational) convolutional autoencoder as a
  scikit-learn transformer.
- :class:`CalciumGAN` — conditional Wasserstein GAN that renders fluorescence
  windows, optionally for a given spike train.
- :class:`DeepSpikeInference` — fully convolutional spike inference on whole traces.
- :class:`SlidingWindowInference` — any window classifier slid over whole traces.
- :class:`BaseKerasEstimator` / :func:`load` / :func:`load_metadata` — the shared
  machinery, loading of any saved estimator and the metadata saved with it.
"""

from ._autoencoder import CalciumAutoencoder
from ._base import BaseKerasEstimator
from ._classifier import SpikeClassifier
from ._gan import CalciumGAN
from ._inference import DeepSpikeInference
from ._persistence import load, load_metadata
from ._sliding import SlidingWindowInference

__all__ = [
    "BaseKerasEstimator",
    "CalciumAutoencoder",
    "CalciumGAN",
    "DeepSpikeInference",
    "SlidingWindowInference",
    "SpikeClassifier",
    "load",
    "load_metadata",
]
