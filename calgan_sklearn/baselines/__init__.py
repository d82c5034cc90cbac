"""Classical spike inference methods as trace-level scikit-learn estimators.

Every estimator here follows the package's trace convention (see
:class:`calgan_sklearn.base.SpikeInferenceMixin`): ``fit(X, y)`` on NaN-padded
calcium traces with spike counts, ``predict(X)`` returning spike rates of the
same shape. They need no GPU and serve as reference points for the deep models.
"""

from ..signal import noise_sd as robust_noise_sd  # the old name, kept for user code
from ._derivative import DerivativeDetector
from ._oasis import OASIS
from ._wiener import WienerDeconvolution

__all__ = ["OASIS", "WienerDeconvolution", "DerivativeDetector", "robust_noise_sd"]
