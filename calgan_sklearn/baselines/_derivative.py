"""Spike inference from the thresholded derivative of the smoothed trace."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.utils._param_validation import Interval

from ..signal import robust_sd
from ._base import _TraceBaseline

__all__ = ["DerivativeDetector"]


class DerivativeDetector(_TraceBaseline):
    """Spike rates from the rising slope of the smoothed calcium trace.

    Calcium rises quickly after a spike and decays slowly, so the positive part
    of the first derivative marks spikes. The trace is smoothed with a Gaussian
    of width ``sigma``, differenced, and soft-thresholded at ``threshold``
    robust standard deviations of the derivative; the remaining positive
    slope is the activity.

    Parameters
    ----------
    sigma : float, default=0.02
        Standard deviation of the Gaussian smoothing in seconds (0: none).
    threshold : float, default=1.0
        Soft threshold in robust SDs (median absolute deviation) of the
        derivative; slopes below it count as noise.
    normalize : {"noise"} or None, default="noise"
        ``"noise"`` divides each trace by its robust noise SD
        (:func:`calgan_sklearn.signal.noise_sd`) first, so arbitrary-unit
        recordings share one calibration scale; ``None`` uses the traces as given.
    calibrate : bool, default=True
        Whether ``fit(X, y)`` learns ``calibration_scale_`` by least squares of
        the summed activity of each training trace onto its true spike count.
    fs : float, default=100.0
        Frame rate of the traces in Hz.

    Attributes
    ----------
    calibration_scale_ : float
        Spikes per unit of thresholded slope (1.0 when not calibrated).

    See Also
    --------
    OASIS : Sparse non-negative deconvolution.
    WienerDeconvolution : Linear deconvolution in the frequency domain.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.baselines import DerivativeDetector
    >>> rng = np.random.default_rng(0)
    >>> spikes = (rng.random((2, 1000)) < 0.02).astype(float)
    >>> calcium = np.array([np.convolve(s, 0.95 ** np.arange(200))[:1000] for s in spikes])
    >>> est = DerivativeDetector(fs=30.0).fit(calcium, spikes)
    >>> est.predict(calcium).shape
    (2, 1000)
    """

    _parameter_constraints: dict = {
        **_TraceBaseline._parameter_constraints,
        "sigma": [Interval(Real, 0, None, closed="left")],
        "threshold": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, sigma=0.02, threshold=1.0, normalize="noise", calibrate=True, fs=100.0):
        self.sigma = sigma
        self.threshold = threshold
        self.normalize = normalize
        self.calibrate = calibrate
        self.fs = fs

    def _infer_trace(self, x):
        width = self.sigma * self._fs()
        xs = gaussian_filter1d(x, width, mode="nearest") if width > 0 else x
        # backward difference: a spike in frame t raises frame t over frame t - 1
        d = np.diff(xs, prepend=xs[0])
        return d - self.threshold * robust_sd(d)
