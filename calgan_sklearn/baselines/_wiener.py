"""Wiener deconvolution with an exponential calcium kernel."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy import fft as sp_fft
from sklearn.utils._param_validation import Interval

from ..signal import map_traces, noise_sd, trace_lengths
from ._base import _TraceBaseline, estimate_ar

__all__ = ["WienerDeconvolution"]

#: Decay time constants (s) tried by ``fit`` when ``tau_decay=None`` and ``y`` is given.
_TAU_GRID = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)


class WienerDeconvolution(_TraceBaseline):
    """Linear spike inference by Wiener deconvolution with an exponential kernel.

    The trace is modelled as ``x = h * s + noise`` with a kernel
    ``h(t) = exp(-t / tau_decay) - exp(-t / tau_rise)`` (a pure exponential when
    ``tau_rise=0``). The spike signal is estimated in the frequency domain as
    ``S = X conj(H) / (|H|^2 + 1 / snr)``, then rectified. Each trace's baseline
    (its median) is removed first and the ends are mirrored, so the FFT does not
    wrap the end of a trace onto its start.

    Parameters
    ----------
    tau_decay : float, default=None
        Decay time constant in seconds. ``None`` learns it in ``fit``: with
        spikes ``y``, the value of a fixed grid (0.05 to 2 s) with the highest
        mean SpikeFinder correlation on the training traces; without ``y``, the
        median AR(1) time constant estimated on the training traces.
    tau_rise : float, default=0.0
        Rise time constant in seconds (0: instantaneous rise).
    snr : float, default=None
        Ratio of spike-signal power per frame to noise power. ``None``
        estimates it for every trace from its variance and noise level.
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
    tau_decay_ : float
        Decay time constant used for prediction (s).
    calibration_scale_ : float
        Spikes per unit of deconvolved activity (1.0 when not calibrated).

    See Also
    --------
    OASIS : Sparse non-negative deconvolution.
    DerivativeDetector : Thresholded derivative of the smoothed trace.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.baselines import WienerDeconvolution
    >>> rng = np.random.default_rng(0)
    >>> spikes = (rng.random((2, 1000)) < 0.02).astype(float)
    >>> calcium = np.array([np.convolve(s, 0.95 ** np.arange(200))[:1000] for s in spikes])
    >>> est = WienerDeconvolution(tau_decay=0.65, fs=30.0).fit(calcium, spikes)
    >>> est.predict(calcium).shape
    (2, 1000)
    """

    _parameter_constraints: dict = {
        **_TraceBaseline._parameter_constraints,
        "tau_decay": [Interval(Real, 0, None, closed="neither"), None],
        "tau_rise": [Interval(Real, 0, None, closed="left")],
        "snr": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        tau_decay=None,
        tau_rise=0.0,
        snr=None,
        normalize="noise",
        calibrate=True,
        fs=100.0,
    ):
        self.tau_decay = tau_decay
        self.tau_rise = tau_rise
        self.snr = snr
        self.normalize = normalize
        self.calibrate = calibrate
        self.fs = fs

    def _check_params(self):
        if self.tau_decay is not None and self.tau_rise >= self.tau_decay:
            raise ValueError(
                f"tau_rise={self.tau_rise!r} s must be shorter than "
                f"tau_decay={self.tau_decay!r} s."
            )

    def _fit_traces(self, X, y):
        if self.tau_decay is not None:
            self.tau_decay_ = float(self.tau_decay)
        elif y is not None:
            self.tau_decay_ = self._select_tau(X, y)
        else:
            self.tau_decay_ = self._estimate_tau(X)

    def _select_tau(self, X, y):
        from ..metrics import spikefinder_correlation

        best, best_score = _TAU_GRID[0], -np.inf
        for tau in _TAU_GRID:
            if tau <= self.tau_rise:
                continue
            rates = map_traces(X, lambda x, tau=tau: self._deconvolve(x, tau))
            score = np.nanmean(spikefinder_correlation(y, rates, fs=self._fs(), average=False))
            if score > best_score:
                best, best_score = tau, score
        return float(best)

    def _estimate_tau(self, X):
        taus = []
        for i, n in enumerate(trace_lengths(X)):
            g = estimate_ar(X[i, :n], 1, fudge_factor=1.0)[0][0]
            if 0 < g < 1:
                taus.append(-1.0 / (np.log(g) * self._fs()))
        tau = float(np.median(taus)) if taus else 0.5
        return max(tau, 2.0 / self._fs(), self.tau_rise * 1.5)

    def _infer_trace(self, x):
        return self._deconvolve(x, self.tau_decay_)

    def _kernel(self, tau_decay, n):
        t = np.arange(n) / self._fs()
        h = np.exp(-t / tau_decay)
        if self.tau_rise > 0:
            h = h - np.exp(-t / self.tau_rise)
        return h / h.max()

    def _deconvolve(self, x, tau_decay):
        n = len(x)
        x = x - np.median(x)
        n_kernel = min(int(np.ceil(8 * tau_decay * self._fs())) + 1, 4 * n)
        h = self._kernel(tau_decay, max(n_kernel, 2))
        pad = min(n - 1, len(h))
        xp = np.concatenate([x[pad:0:-1], x, x[-2 : -pad - 2 : -1]]) if pad > 0 else x
        nfft = sp_fft.next_fast_len(len(xp) + len(h))
        H = sp_fft.rfft(h, nfft)
        if self.snr is None:
            sn = noise_sd(x)
            power = max(np.var(x) - sn**2, 1e-3 * sn**2) / float(h @ h)
            inv_snr = sn**2 / power
        else:
            inv_snr = 1.0 / self.snr
        S = sp_fft.rfft(xp, nfft) * np.conj(H) / (np.abs(H) ** 2 + inv_snr)
        return sp_fft.irfft(S, nfft)[pad : pad + n]
