"""What every classical baseline shares: normalisation, the per-trace loop, calibration.

A baseline turns one trace into a non-negative activity signal in its own units
(``_infer_trace``). This base class validates the input, optionally rescales each
trace to units of its noise level (so arbitrary-unit recordings are comparable),
and learns one global scale on the training traces that turns the activity into
expected spikes per frame.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..base import SpikeInferenceMixin
from ..signal import map_traces, normalize, robust_sd, trace_lengths

__all__ = []


def _looks_noiseless(x):
    """True for a non-constant trace whose median absolute step deviation is 0."""
    return bool(np.ptp(x) > 0 and robust_sd(np.diff(np.asarray(x, dtype=float))) == 0)


def estimate_ar(x, p, fudge_factor=0.98):
    """OASIS's AR(p) coefficients and noise SD of one trace, deterministically.

    ``oasis.functions.estimate_parameters`` replaces out-of-range AR roots with
    draws from NumPy's global generator; it is seeded here and restored after,
    so predictions do not depend on (or change) the user's global random state.
    """
    from oasis.functions import estimate_parameters

    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(0)  # noqa: NPY002
    try:
        g, sn = estimate_parameters(x, p=p, fudge_factor=fudge_factor)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    return tuple(float(v) for v in np.atleast_1d(g)), float(sn)


class _TraceBaseline(SpikeInferenceMixin, BaseEstimator):
    """Base for classical estimators: subclasses implement ``_infer_trace``.

    Subclasses may also implement ``_fit_traces(X, y)`` to learn parameters
    from training traces (after normalisation) before the scale is calibrated.
    """

    _parameter_constraints: dict = {
        "fs": [Interval(Real, 0, None, closed="neither")],
        "normalize": [StrOptions({"noise"}), None],
        "calibrate": ["boolean"],
    }

    # -- public API ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn what the method needs from training traces and calibrate its scale.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.
        y : array-like of shape (n_traces, n_frames), default=None
            True spike counts per frame. Without ``y`` nothing is calibrated
            (``calibration_scale_ = 1``) and predictions are in the method's own units.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y = self._check_fit_input(X, y, require_y=False, min_frames=self._min_frames())
        self._check_params()
        Xn = self._normalize(X)
        self._fit_traces(Xn, y)
        self.calibration_scale_ = 1.0
        if y is not None and self.calibrate:
            if not np.nansum(y) > 0:  # nothing to calibrate on (warned by the input check)
                return self
            self.calibration_scale_ = self._calibrate_scale(self._infer_all(Xn), y)
        return self

    def predict(self, X, out=None):
        """Infer spike rates (expected spikes per frame) for every frame.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.
        out : ndarray of shape (n_traces, n_frames), default=None
            Array the rates are written to and returned, e.g. a float32
            ``np.lib.format.open_memmap`` file, so that not even the output is
            held in memory; None returns a new float32 array.

        Returns
        -------
        rates : ndarray of shape (n_traces, n_frames), float32
            Non-negative rates, NaN exactly where ``X`` is NaN. Traces are read
            and inferred in chunks, so a memory-mapped ``X`` is never loaded whole.
        """
        check_is_fitted(self, "calibration_scale_")
        return self._predict_in_chunks(X, self._predict_chunk, out=out)

    # -- hooks for subclasses ----------------------------------------------------
    def _check_params(self):
        """Cross-parameter checks that ``_parameter_constraints`` cannot express."""

    def _fit_traces(self, X, y):
        """Learn parameters from normalised training traces (default: nothing)."""

    def _infer_trace(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _min_frames(self):
        return 2

    # -- helpers ---------------------------------------------------------------
    def _predict_chunk(self, X, first):
        """Rates of a validated chunk of traces whose first trace is number ``first``."""
        self._check_min_frames(X, first)
        return self._infer_all(self._normalize(X, first), first) * self.calibration_scale_

    def _check_min_frames(self, X, first=0):
        lengths = trace_lengths(X)
        short = np.flatnonzero((lengths > 0) & (lengths < self._min_frames()))
        if len(short):
            raise ValueError(
                f"{type(self).__name__} needs at least {self._min_frames()} frames per trace; "
                f"trace(s) {(first + short[:10]).tolist()} are shorter (shortest: "
                f"{int(lengths[short].min())} frames). Drop them, e.g. "
                f"X[trace_lengths(X) >= {self._min_frames()}], or check that traces are rows."
            )

    def _normalize(self, X, first=0):
        if self.normalize is None:
            return X
        noiseless = [
            first + i
            for i, n in enumerate(trace_lengths(X))
            if n >= 8 and _looks_noiseless(X[i, :n])
        ]
        if noiseless:
            warnings.warn(
                f"trace(s) {noiseless[:10]} look noise-free (most frame-to-frame steps are "
                f"identical, but the trace is not constant), so {type(self).__name__} cannot "
                "measure their noise and their rates are unreliable (often far too large). "
                "Real recordings always have noise: check that these are raw traces.",
                UserWarning,
                stacklevel=4,
            )
        return map_traces(X, lambda x: normalize(x, self.normalize)[0])

    def _infer_all(self, X, first=0):
        out = np.full(X.shape, np.nan)
        for i, n in enumerate(trace_lengths(X)):
            if n:
                out[i, :n] = np.maximum(self._infer_one(X[i, :n], first + i), 0.0)
        return out

    def _infer_one(self, x, i):
        """``_infer_trace`` on trace ``i``; a numerical failure names the trace."""
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                activity = self._infer_trace(x)
        except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError) as exc:
            raise ValueError(
                f"{type(self).__name__} failed on trace {i} ({len(x)} frames): "
                f"{type(exc).__name__}: {exc}. Check that trace for constant, very short "
                "or extreme values, or drop it."
            ) from exc
        activity = np.asarray(activity, dtype=np.float64)
        if not np.all(np.isfinite(activity)):
            raise ValueError(
                f"{type(self).__name__} gave non-finite activity on trace {i} ({len(x)} "
                "frames); check that trace for extreme values (e.g. near 1e308) or drop it."
            )
        return activity

    @staticmethod
    def _calibrate_scale(activity, y):
        """Least-squares scale of per-trace summed activity onto true spike totals."""
        a = np.nansum(activity, axis=1)
        n = np.nansum(y, axis=1)
        denom = float(a @ a)
        if denom <= 0:
            return 1.0
        return max(float(a @ n) / denom, 0.0)
