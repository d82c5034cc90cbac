"""OASIS (Friedrich, Zhou & Paninski 2017) as a trace-level estimator."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval

from ._base import _TraceBaseline, estimate_ar

__all__ = ["OASIS"]


class OASIS(_TraceBaseline):
    """Sparse non-negative deconvolution with an AR(1) or AR(2) calcium model (OASIS).

    Wraps the ``oasis-deconv`` package. Each trace is deconvolved on its own by
    solving ``min |s|_q subject to |c - y|^2 = sn^2 T, s = G c >= 0`` with the
    fast active-set method; ``fit`` only learns one global scale that turns the
    deconvolved activity into expected spikes per frame.

    Parameters
    ----------
    p : {1, 2}, default=1
        Order of the autoregressive model of the calcium kernel: 1 is an
        instantaneous rise and exponential decay, 2 adds a finite rise time.
    penalty : {0, 1}, default=1
        Sparsity penalty: 1 is the convex L1 problem, 0 the L0 problem
        (fewer, larger events).
    g : tuple of float, default=None
        AR coefficients per frame at ``fs`` (length ``p``). ``None`` estimates
        them for every trace from its autocovariance, unless ``tau_decay`` is
        given. Mutually exclusive with ``tau_decay``.
    tau_decay : float, default=None
        Decay time constant in seconds; transfers across frame rates, unlike
        ``g``. ``p=2`` also needs ``tau_rise``.
    tau_rise : float, default=None
        Rise time constant in seconds (``p=2`` only).
    sn : float, default=None
        Noise standard deviation, in units of the robust noise estimate when
        ``normalize="noise"`` (so 1.0 means "as estimated") and in the traces'
        own units otherwise. ``None`` estimates it per trace from the power
        spectrum, as OASIS does.
    b : float, default=None
        Fluorescence baseline (in the same units as ``sn``). ``None`` optimises
        it per trace; it may be negative, since detrended recordings such as
        SpikeFinder's sit around zero.
    optimize_g : int, default=0
        Number of large isolated events OASIS uses to refine ``g`` per trace
        (0: no refinement).
    normalize : {"noise"} or None, default="noise"
        ``"noise"`` divides each trace by its robust noise SD
        (:func:`calgan_sklearn.signal.noise_sd`) before deconvolution, so
        recordings in arbitrary units share one calibration scale. OASIS is
        otherwise scale-equivariant; ``None`` leaves traces untouched.
    calibrate : bool, default=True
        Whether ``fit(X, y)`` learns ``calibration_scale_`` by least squares of
        the summed activity of each training trace onto its true spike count.
    fs : float, default=100.0
        Frame rate of the traces in Hz.

    Attributes
    ----------
    calibration_scale_ : float
        Spikes per unit of deconvolved activity (1.0 when not calibrated).

    See Also
    --------
    WienerDeconvolution : Linear deconvolution in the frequency domain.
    DerivativeDetector : Thresholded derivative of the smoothed trace.

    References
    ----------
    Friedrich J, Zhou P, Paninski L (2017). Fast online deconvolution of calcium
    imaging data. PLoS Comput Biol 13(3): e1005423.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.baselines import OASIS
    >>> rng = np.random.default_rng(0)
    >>> spikes = (rng.random((2, 1000)) < 0.02).astype(float)
    >>> calcium = np.array([np.convolve(s, 0.95 ** np.arange(200))[:1000] for s in spikes])
    >>> calcium += rng.normal(scale=0.1, size=calcium.shape)
    >>> est = OASIS(fs=30.0).fit(calcium, spikes)
    >>> est.predict(calcium).shape
    (2, 1000)
    """

    _parameter_constraints: dict = {
        **_TraceBaseline._parameter_constraints,
        "p": [Interval(Integral, 1, 2, closed="both")],
        "penalty": [Interval(Integral, 0, 1, closed="both")],
        "g": ["array-like", None],
        "tau_decay": [Interval(Real, 0, None, closed="neither"), None],
        "tau_rise": [Interval(Real, 0, None, closed="neither"), None],
        "sn": [Interval(Real, 0, None, closed="neither"), None],
        "b": [Real, None],
        "optimize_g": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        p=1,
        penalty=1,
        g=None,
        tau_decay=None,
        tau_rise=None,
        sn=None,
        b=None,
        optimize_g=0,
        normalize="noise",
        calibrate=True,
        fs=100.0,
    ):
        self.p = p
        self.penalty = penalty
        self.g = g
        self.tau_decay = tau_decay
        self.tau_rise = tau_rise
        self.sn = sn
        self.b = b
        self.optimize_g = optimize_g
        self.normalize = normalize
        self.calibrate = calibrate
        self.fs = fs

    def _check_params(self):
        if self.g is not None and self.tau_decay is not None:
            raise ValueError(
                f"give either g={self.g!r} (AR coefficients per frame) or "
                f"tau_decay={self.tau_decay!r} (seconds), not both."
            )
        if self.tau_rise is not None and self.p == 1:
            raise ValueError(
                f"tau_rise={self.tau_rise!r} needs the AR(2) model; set p=2 or tau_rise=None."
            )
        if self.p == 2 and (self.tau_decay is None) != (self.tau_rise is None):
            raise ValueError(
                "p=2 needs both tau_decay and tau_rise (seconds), or neither to estimate "
                f"them; got tau_decay={self.tau_decay!r}, tau_rise={self.tau_rise!r}."
            )
        if self.tau_rise is not None and self.tau_rise >= self.tau_decay:
            raise ValueError(
                f"tau_rise={self.tau_rise!r} s must be shorter than "
                f"tau_decay={self.tau_decay!r} s."
            )
        if self.g is not None:
            self._g_given()

    def _min_frames(self):
        # OASIS estimates noise from the power spectrum and AR coefficients from
        # autocovariances up to lag 5; below 8 frames LAPACK fails on the estimate
        return 8

    def _g_given(self):
        """AR coefficients fixed by the parameters, or None to estimate per trace."""
        fs = self._fs()
        if self.tau_decay is not None:
            d = np.exp(-1.0 / (self.tau_decay * fs))
            if self.p == 1:
                return (d,)
            r = np.exp(-1.0 / (self.tau_rise * fs))
            return (d + r, -d * r)
        if self.g is None:
            return None
        g = np.atleast_1d(np.asarray(self.g, dtype=float)).ravel()
        if len(g) != self.p or not np.all(np.isfinite(g)):
            raise ValueError(
                f"g must hold {self.p} finite AR coefficient(s) for p={self.p}; got g={self.g!r}."
            )
        if self.p == 1 and not 0 < g[0] < 1:
            raise ValueError(f"g for AR(1) must lie in (0, 1) to decay; got g={self.g!r}.")
        return tuple(float(v) for v in g)

    def _infer_trace(self, x):
        from oasis.functions import GetSn

        x = np.ascontiguousarray(x, dtype=np.float64)
        g, sn = self._g_given(), self.sn
        if g is None:
            g, sn_est = estimate_ar(x, self.p)
            sn = sn_est if sn is None else sn
        elif sn is None:
            sn = GetSn(x)
        sn = max(float(sn), 1e-12)
        optimize_b = self.b is None
        y = x if optimize_b else x - float(self.b)
        if self.p == 1:
            g1 = float(np.clip(g[0], 1e-6, 1 - 1e-9))
            return self._solve_ar1(y, g1, sn, optimize_b)[0]
        return self._solve_ar2(y, g, sn, optimize_b)

    def _solve_ar1(self, y, g, sn, optimize_b):
        from oasis.oasis_methods import constrained_oasisAR1

        _, s, b, _, lam = constrained_oasisAR1(
            y,
            g,
            sn,
            optimize_b=optimize_b,
            b_nonneg=False,
            optimize_g=self.optimize_g,
            penalty=int(self.penalty),
        )
        return s, b, lam

    def _solve_ar2(self, y, g, sn, optimize_b):
        """Greedy AR(2) deconvolution with baseline and sparsity from the AR(1) problem.

        OASIS's exact noise-constrained AR(2) solver (``constrained_onnlsAR2``)
        takes minutes on a 5-minute trace at 100 Hz; as OASIS itself does to
        initialise it, the noise constraint is solved for the AR(1) model with
        the slow root of the AR(2) kernel, and its baseline and penalty (and for
        ``penalty=0`` its smallest event) are handed to the fast ``oasisAR2``.
        """
        from oasis.oasis_methods import oasisAR2

        g1, g2 = float(g[0]), float(g[1])
        disc = max(g1 * g1 + 4 * g2, 0.0)
        d = float(np.clip((g1 + np.sqrt(disc)) / 2, 1e-6, 1 - 1e-9))
        s1, b, lam = self._solve_ar1(y, d, sn, optimize_b)
        lam = lam * (1 - d) / max(1 - g1 - g2, 1e-9)
        s_min = 0.0
        if self.penalty == 0 and np.any(s1 > 0):
            s_min = float(s1[s1 > 0].min())
            lam = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 inside oasisAR2's setup
            return oasisAR2(np.ascontiguousarray(y - b), g1, g2, lam=lam, s_min=s_min)[1]
