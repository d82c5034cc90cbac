"""Input scaling of fluorescence windows, shared by the three window estimators.

:class:`WindowScalingMixin` is used by :class:`SpikeClassifier`,
:class:`CalciumGAN` and :class:`CalciumAutoencoder`: it learns the scaling
chosen by their ``normalize`` parameter in ``fit``, maps windows to the
network's units and generated windows back to data units.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions

from ..signal import noise_sd

__all__ = ["NORMALIZE_CONSTRAINT", "WindowScalingMixin"]

#: Constraint of the ``normalize`` parameter of the window estimators
#: (the values mean what :mod:`calgan_sklearn.signal` says).
NORMALIZE_CONSTRAINT = [StrOptions({"noise", "global"}), None]

#: Training windows whose (baseline, noise) pairs are kept for generated windows.
_MAX_KEPT_WINDOWS = 4096


class WindowScalingMixin:
    """Scaling of ``(n_windows, window_length)`` windows per ``self.normalize``.

    The host estimator has a ``normalize`` parameter (``"noise"``,
    ``"global"`` or None) and a ``_seed`` set in ``fit``; it calls
    :meth:`_fit_scaling` from its ``_learn_data`` hook. Fitted attributes:
    ``input_offset_``, ``input_scale_`` and, with ``normalize="noise"``,
    ``window_loc_`` / ``window_scale_``.
    """

    def _fit_scaling(self, X):
        """Learn the input scaling selected by ``self.normalize``.

        ``"noise"``: subtract each window's 20th percentile (its baseline) and
        divide by its noise sigma (:func:`calgan_sklearn.signal.noise_sd`, steps
        not centred), then
        by one global factor so the training windows have unit variance; the
        pairs (baseline, noise) of up to 4096 training windows are kept in
        ``window_loc_`` / ``window_scale_`` to bring generated windows back to
        data units. ``"global"``: subtract the global mean, divide by the
        global std. ``input_offset_`` and ``input_scale_`` hold the global parts.
        """
        mode = self.normalize
        self.input_offset_, self.input_scale_ = 0.0, 1.0
        if mode == "global":
            self.input_offset_ = float(X.mean())
            self.input_scale_ = float(X.std()) if X.std() > 1e-12 else 1.0
        elif mode == "noise":
            loc, noise = self._window_stats(X)
            z = (X - loc[:, None]) / noise[:, None]
            self.input_scale_ = float(z.std()) if z.std() > 1e-12 else 1.0
            keep = check_random_state(self._seed).permutation(len(X))[:_MAX_KEPT_WINDOWS]
            self.window_loc_, self.window_scale_ = loc[keep], noise[keep]

    @staticmethod
    def _window_stats(X):
        """Per-window baseline (20th percentile) and noise sigma."""
        return np.percentile(X, 20, axis=1), noise_sd(X, axis=1, center=False)

    def _scale(self, X):
        """Windows in data units -> normalised float32 ``(n, L)`` plus per-window loc/scale."""
        if self.normalize == "noise":
            loc, noise = self._window_stats(X)
        else:
            loc, noise = np.full(len(X), self.input_offset_), np.ones(len(X))
        scale = noise * self.input_scale_
        Z = (X - loc[:, None]) / scale[:, None]
        return Z.astype(np.float32), loc, scale

    @staticmethod
    def _unscale(Z, loc, scale):
        """Normalised windows -> data units, the inverse of :meth:`_scale`."""
        return np.asarray(Z, dtype=np.float64) * scale[:, None] + loc[:, None]

    def _draw_loc_scale(self, n, rng):
        """(loc, scale) pairs for generated windows: drawn from the training windows."""
        if self.normalize == "noise":
            idx = rng.randint(len(self.window_loc_), size=n)
            return self.window_loc_[idx], self.window_scale_[idx] * self.input_scale_
        return np.full(n, self.input_offset_), np.full(n, self.input_scale_)
