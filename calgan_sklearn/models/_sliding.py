"""Turn any window classifier into a trace-level spike-inference estimator.

Fitting cuts a random sample of windows (each centred on one frame) from the
training traces through a strided view, so the full set of overlapping windows
is never built; prediction slides the fitted classifier over every frame in
batches. Each trace is mirrored at its ends, so every frame gets a prediction
and the output keeps the input's shape.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..base import SpikeInferenceMixin
from ..signal import normalize, trace_lengths

__all__ = ["SlidingWindowInference"]


class SlidingWindowInference(SpikeInferenceMixin, MetaEstimatorMixin, BaseEstimator):
    """Spike inference by sliding a window classifier over every frame of a trace.

    A window of ``window`` frames centred on frame ``t`` is labelled 1 when
    frame ``t`` holds at least one spike. ``fit`` trains a clone of
    ``estimator`` on a random sample of such windows; ``predict`` returns, for
    every frame, the classifier's probability of a spike in the centre frame,
    corrected for the class balance used in training and (optionally) scaled to
    expected spikes per frame.

    Parameters
    ----------
    estimator : classifier, default=None
        Window classifier with ``fit(X_windows, labels)`` and ``predict_proba``
        (any scikit-learn classifier, or
        :class:`~calgan_sklearn.models.SpikeClassifier`). ``None`` uses
        ``SpikeClassifier()``. It is cloned, never fitted in place.
    window : int, default=64
        Window length in frames; frame ``t`` sits at position
        ``(window - 1) // 2``, as in :func:`~calgan_sklearn.datasets.make_windows`.
    max_windows : int, default=20000
        Most training windows sampled from the traces.
    balance : float or None, default=0.5
        Fraction of spike windows in the training sample (as far as the data
        allows); predictions are corrected back to the true spike frequency.
        ``None`` samples windows uniformly.
    normalize : {"noise", "zscore"} or None, default="noise"
        Per-trace normalisation before windows are cut: ``"noise"`` subtracts
        the median and divides by the robust noise SD
        (:func:`calgan_sklearn.signal.noise_sd`; for arbitrary-unit
        recordings), ``"zscore"`` uses mean and SD, ``None`` leaves traces as
        they are.
    calibrate : bool, default=True
        Whether to scale spike probabilities to expected spike counts per
        frame (ratio of true spikes to summed probability on a uniform sample
        of training windows).
    batch_size : int, default=8192
        Windows passed to ``predict_proba`` at once during prediction.
    fs : float, default=100.0
        Frame rate of the traces in Hz (the window is in frames at this rate).
    random_state : int, RandomState instance or None, default=None
        Seed for window sampling (the classifier keeps its own).

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone of ``estimator``.
    prior_ : float
        Fraction of training frames with a spike.
    sample_prior_ : float
        Fraction of spike windows in the training sample.
    calibration_scale_ : float
        Expected spikes per unit of corrected probability (1.0 if not calibrated).
    n_windows_ : int
        Number of training windows.

    See Also
    --------
    calgan_sklearn.models.SpikeClassifier : A CNN window classifier.
    calgan_sklearn.models.DeepSpikeInference : A fully convolutional trace model.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from calgan_sklearn.models import SlidingWindowInference
    >>> rng = np.random.default_rng(0)
    >>> spikes = (rng.random((3, 2000)) < 0.02).astype(float)
    >>> calcium = np.array([np.convolve(s, 0.95 ** np.arange(200))[:2000] for s in spikes])
    >>> calcium += rng.normal(scale=0.2, size=calcium.shape)
    >>> est = SlidingWindowInference(LogisticRegression(), window=16, random_state=0)
    >>> est.fit(calcium, spikes).predict(calcium).shape
    (3, 2000)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "window": [Interval(Integral, 1, None, closed="left")],
        "max_windows": [Interval(Integral, 2, None, closed="left")],
        "balance": [Interval(Real, 0, 1, closed="neither"), None],
        "normalize": [StrOptions({"noise", "zscore"}), None],
        "calibrate": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "fs": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        window=64,
        max_windows=20000,
        balance=0.5,
        normalize="noise",
        calibrate=True,
        batch_size=8192,
        fs=100.0,
        random_state=None,
    ):
        self.estimator = estimator
        self.window = window
        self.max_windows = max_windows
        self.balance = balance
        self.normalize = normalize
        self.calibrate = calibrate
        self.batch_size = batch_size
        self.fs = fs
        self.random_state = random_state

    # -- public API ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Train a clone of ``estimator`` on windows sampled from the traces.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.
        y : array-like of shape (n_traces, n_frames)
            Spike counts per frame.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y = self._check_fit_input(X, y)
        rng = check_random_state(self.random_state)
        views, lengths = self._window_views(X)
        counts, labels = self._frame_labels(y, lengths)
        self.prior_ = float(labels.mean())
        idx = self._sample_frames(labels, rng)
        self.sample_prior_ = float(labels[idx].mean())
        self.n_windows_ = len(idx)
        self.estimator_ = self._fit_estimator(self._gather(views, lengths, idx), labels[idx])
        self.calibration_scale_ = 1.0
        if self.calibrate:
            self.calibration_scale_ = self._calibration_scale(views, lengths, counts, rng)
        return self

    def predict(self, X):
        """Spike rates for every frame: the centre-frame spike probability, calibrated.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.

        Returns
        -------
        rates : ndarray of shape (n_traces, n_frames)
            Expected spikes per frame, NaN exactly where ``X`` is NaN.
        """
        check_is_fitted(self, "estimator_")
        return self._predict_in_chunks(X, self._predict_chunk)

    # -- helpers ---------------------------------------------------------------
    def _predict_chunk(self, X, first):
        """Rates of a validated chunk of traces (``first``: unused, nothing is named)."""
        views, lengths = self._window_views(X)
        out = np.full(X.shape, np.nan)
        for i, n in enumerate(lengths):
            if n:
                out[i, :n] = self._predict_windows(views[i, :n])
        return out

    def _window_views(self, X):
        """Mirror-pad each normalised trace; return a strided (n_traces, n_frames, window) view.

        Mirroring (rather than repeating the end value) keeps the noise of the
        padded part, so classifiers that scale each window by its noise level
        see ordinary windows at the edges too.
        """
        w, half = self.window, (self.window - 1) // 2
        lengths = trace_lengths(X)
        padded = np.zeros((X.shape[0], X.shape[1] + w - 1))
        for i, n in enumerate(lengths):
            if n:
                x = normalize(X[i, :n], self.normalize, baseline=50.0)[0]
                mode = "reflect" if n > 1 else "edge"
                padded[i, : n + w - 1] = np.pad(x, (half, w - 1 - half), mode=mode)
        return sliding_window_view(padded, w, axis=1), lengths

    @staticmethod
    def _frame_labels(y, lengths):
        """Flat spike counts and binary labels of every valid frame, trace by trace."""
        counts = np.concatenate([y[i, :n] for i, n in enumerate(lengths)])
        labels = (counts > 0).astype(int)
        if labels.min() == labels.max():
            kind = "no" if labels.max() == 0 else "only"
            raise ValueError(
                f"the training traces contain {kind} spike frames; the window classifier "
                "needs frames with and without spikes."
            )
        return counts, labels

    def _sample_frames(self, labels, rng):
        """Indices into the flat frame list: uniform, or with the requested spike fraction."""
        n_total = len(labels)
        if self.balance is None:
            k = min(self.max_windows, n_total)
            return np.sort(rng.choice(n_total, size=k, replace=False))
        pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        n_pos = min(len(pos), max(int(round(self.balance * self.max_windows)), 1))
        n_neg = min(
            len(neg),
            self.max_windows - n_pos,
            max(int(round(n_pos * (1 - self.balance) / self.balance)), 1),
        )
        idx = np.concatenate(
            [
                rng.choice(pos, size=n_pos, replace=False),
                rng.choice(neg, size=n_neg, replace=False),
            ]
        )
        return np.sort(idx)

    @staticmethod
    def _gather(views, lengths, flat_idx):
        """Copy the windows of the given flat frame indices out of the strided view."""
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        trace = np.searchsorted(np.cumsum(lengths), flat_idx, side="right")
        frame = flat_idx - starts[trace]
        return np.ascontiguousarray(views[trace, frame], dtype=np.float32)

    def _fit_estimator(self, windows, labels):
        if self.estimator is None:
            from ._classifier import SpikeClassifier

            base = SpikeClassifier()
        else:
            base = self.estimator
        est = clone(base).fit(windows, labels)
        classes = list(np.asarray(est.classes_).tolist())
        if 1 not in classes:
            raise ValueError(
                f"the fitted window classifier has classes {classes}; expected labels 0 and 1."
            )
        self.positive_index_ = classes.index(1)
        return est

    def _predict_windows(self, windows):
        p = np.empty(len(windows))
        for start in range(0, len(windows), self.batch_size):
            batch = np.ascontiguousarray(windows[start : start + self.batch_size], np.float32)
            p[start : start + len(batch)] = self.estimator_.predict_proba(batch)[
                :, self.positive_index_
            ]
        return self._correct_prior(p) * self.calibration_scale_

    def _correct_prior(self, p):
        """Undo the class balance of the training sample (Bayes' rule on the odds)."""
        q, pi = self.sample_prior_, self.prior_
        if np.isclose(q, pi):
            return p
        a = p * pi / q
        return a / (a + (1 - p) * (1 - pi) / (1 - q))

    def _calibration_scale(self, views, lengths, counts, rng):
        k = min(self.max_windows, len(counts))
        idx = np.sort(rng.choice(len(counts), size=k, replace=False))
        self.calibration_scale_ = 1.0
        p = self._predict_windows(self._gather(views, lengths, idx))
        total = float(p.sum())
        return float(counts[idx].sum() / total) if total > 0 else 1.0
