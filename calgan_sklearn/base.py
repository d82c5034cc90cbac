"""The trace-level spike-inference convention shared by deep models and baselines.

Every spike-inference estimator in the package (and any a user writes) follows
one convention:

- ``fit(X, y)`` with ``X`` calcium traces ``(n_traces, n_frames)``, NaN-padded at
  the end, and ``y`` spike counts of the same shape (``y`` may be optional for
  unsupervised methods);
- ``predict(X)`` returns spike rates (expected spikes per frame) of the same
  shape, NaN exactly where ``X`` is NaN;
- ``score(X, y)`` is the mean SpikeFinder correlation;
- ``fs`` is a parameter: the frame rate of the data passed in. An estimator that
  works at another rate internally resamples, and maps its output back onto the
  input's frames.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._validation import check_fs, check_spikes, check_traces, warn_implausible

__all__ = ["SpikeInferenceMixin"]


class SpikeInferenceMixin:
    """Mixin for trace-level spike inference estimators.

    Provides input checking and ``score`` (mean SpikeFinder correlation); the
    per-trace operations (NaN padding, resampling, noise) are in
    :mod:`calgan_sklearn.signal`. Put it left of :class:`sklearn.base.BaseEstimator`.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def score(self, X, y, sample_weight=None):
        """Mean SpikeFinder correlation of ``predict(X)`` with the true spikes ``y``.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces, NaN-padded at the end.
        y : array-like of shape (n_traces, n_frames)
            True spike counts.
        sample_weight : None
            Not supported; present for API compatibility.

        Returns
        -------
        score : float
            Mean over traces of the Pearson correlation in 40 ms bins.
        """
        from .metrics import spikefinder_correlation

        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by the SpikeFinder score.")
        X = check_traces(X)
        y = check_spikes(y, X)
        return float(spikefinder_correlation(y, self.predict(X), fs=self._fs(), average=True))

    # -- helpers for subclasses -------------------------------------------------
    def _fs(self):
        return check_fs(getattr(self, "fs", 100.0))

    def _check_fit_input(self, X, y=None, *, require_y=True, min_frames=1):
        """Validate traces and (optional) spikes for ``fit``; return float arrays.

        Warns where the input is most likely a mistake (:func:`warn_implausible`):
        ``fs`` in the wrong unit, traces as columns, spike times as counts.
        """
        X = check_traces(X, min_frames=min_frames)
        if y is None:
            if require_y:
                raise ValueError(
                    f"{type(self).__name__} needs spike counts y of shape {X.shape} "
                    "(n_traces, n_frames) to fit; got y=None."
                )
            warn_implausible(X, self._fs())
            return X, None
        y = check_spikes(y, X)
        warn_implausible(X, self._fs(), y=y)
        if not np.nansum(y) > 0:
            warnings.warn(
                f"y holds no spikes (every count is 0), so {type(self).__name__} learns no "
                "spikes from it (a baseline keeps calibration_scale_=1: rates in its own "
                "units). Pass spike counts per frame of traces that have spikes.",
                UserWarning,
                stacklevel=3,
            )
        return X, y

    def _check_predict_input(self, X):
        X = check_traces(X)
        warn_implausible(X, self._fs())
        return X
