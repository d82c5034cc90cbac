"""Spike-inference metrics: SpikeFinder correlation, CASCADE error and bias, noise level.

All functions take the ground truth first, as scikit-learn's metrics do: spike
counts per frame ``(n_traces, n_frames)`` and predicted rates of the same shape,
NaN-padded at the end. Frames where either is NaN are ignored. The scorers in
:data:`SCORERS` plug into ``cross_validate`` / ``GridSearchCV`` for trace-level
estimators whose ``predict`` returns rates with the input's shape.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.metrics import make_scorer

from ._validation import check_fs, check_traces
from .signal import rebin_counts, trace_lengths

__all__ = [
    "spikefinder_correlation",
    "cascade_error",
    "cascade_bias",
    "noise_level",
    "spikefinder_scorer",
    "cascade_error_scorer",
    "cascade_bias_scorer",
    "SCORERS",
]


def _as_2d(a, name):
    try:
        a = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, could not convert to float: {exc}") from exc
    if a.ndim == 1:
        a = a[np.newaxis]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n_traces, n_frames), got shape {a.shape}.")
    if np.isinf(a).any():
        raise ValueError(f"{name} contains infinite values; use finite values or NaN.")
    return a


def _check_pair(spikes, rates):
    spikes, rates = _as_2d(spikes, "spikes"), _as_2d(rates, "rates")
    if spikes.shape != rates.shape:
        raise ValueError(
            f"spikes has shape {spikes.shape} but rates has shape {rates.shape}; "
            "the prediction must have the shape of the ground truth."
        )
    return spikes, rates


def _valid(s, r):
    keep = ~(np.isnan(s) | np.isnan(r))
    return s[keep], r[keep]


def _bin(x, fs, bin_s):
    factor = bin_s * fs
    k = int(round(factor))
    if k >= 1 and abs(factor - k) < 1e-9:
        # official SpikeFinder code: convolve(x, ones(k), 'valid')[::k], i.e. sums
        # of consecutive groups of k samples after truncating to a multiple of k
        n = len(x) // k * k
        return x[:n].reshape(-1, k).sum(axis=1)
    n_out = int(np.floor(len(x) / factor))
    return rebin_counts(x, fs, 1.0 / bin_s, n_out=n_out) if n_out else x[:0]


def _reduce(values, average):
    return float(np.nanmean(values)) if average else values


def spikefinder_correlation(spikes, rates, fs=100.0, bin_s=0.04, average=True):
    """SpikeFinder correlation between true spikes and predicted rates.

    Per trace, as in the official SpikeFinder evaluation (Berens et al. 2018):
    frames where either is NaN are dropped, both series are summed in
    consecutive non-overlapping bins of ``bin_s`` (4 frames at 100 Hz; the
    incomplete last bin is discarded) and the Pearson correlation is taken.

    Parameters
    ----------
    spikes : array-like of shape (n_traces, n_frames) or (n_frames,)
        True spike counts per frame.
    rates : array-like of the same shape
        Predicted spike rates (any scale).
    fs : float, default=100.0
        Frame rate in Hz.
    bin_s : float, default=0.04
        Bin width in seconds. Where ``bin_s * fs`` is not an integer, the
        series are re-binned preserving their sums
        (:func:`calgan_sklearn.datasets.rebin_counts`).
    average : bool, default=True
        Return the mean over traces instead of one value per trace.

    Returns
    -------
    score : float or ndarray of shape (n_traces,)

    Warns
    -----
    UserWarning
        For traces where the correlation is undefined (a constant binned truth or
        prediction, or fewer than 2 bins). Those traces score 0.0, not NaN as in
        the official code: a constant prediction carries no information on spike
        timing, and a NaN would break model selection.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.metrics import spikefinder_correlation
    >>> spikes = np.array([[0., 1, 0, 0, 2, 0, 0, 0]])
    >>> spikefinder_correlation(spikes, spikes * 3.0)
    1.0
    """
    spikes, rates = _check_pair(spikes, rates)
    fs, bin_s = check_fs(fs), check_fs(bin_s, "bin_s")
    scores = np.zeros(len(spikes))
    undefined = []
    for i, (s, r) in enumerate(zip(spikes, rates)):
        s, r = _valid(s, r)
        s, r = _bin(s, fs, bin_s), _bin(r, fs, bin_s)
        if len(s) < 2 or np.ptp(s) == 0 or np.ptp(r) == 0:
            undefined.append(i)
            continue
        scores[i] = np.corrcoef(s, r)[0, 1]
    if undefined:
        warnings.warn(
            f"correlation undefined (constant truth or prediction, or < 2 bins) for "
            f"trace(s) {undefined[:10]}; scored 0.0.",
            UserWarning,
            stacklevel=2,
        )
    return _reduce(scores, average)


def _smoothed_sums(spikes, rates, fs, sigma_s, smooth_prediction):
    spikes, rates = _check_pair(spikes, rates)
    fs, sigma_s = check_fs(fs), check_fs(sigma_s, "sigma_s")
    sigma = sigma_s * fs
    out = []
    for s, r in zip(spikes, rates):
        s, r = _valid(s, r)
        if len(s):
            s = gaussian_filter1d(s, sigma)
            if smooth_prediction:
                r = gaussian_filter1d(r, sigma)
        out.append((s, r))
    return out


def _pool(values, groups, n):
    """Sum per-trace ``values`` within each group (in order of first appearance)."""
    if groups is None:
        return np.asarray(values, dtype=float)
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(
            f"groups has shape {groups.shape} but there are {n} traces; pass one "
            "label per trace (e.g. the neuron each trial belongs to)."
        )
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=np.asarray(values, dtype=float))
    return sums[np.argsort(first)]  # np.unique sorts labels; restore first-appearance order


def _ratio(numerators, totals, what):
    totals = np.asarray(totals, dtype=float)
    empty = np.flatnonzero(totals <= 0)
    if len(empty):
        warnings.warn(
            f"{what} undefined for trace(s) {empty[:10].tolist()} without spikes; "
            "they are NaN and left out of the average.",
            UserWarning,
            stacklevel=3,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > 0, np.asarray(numerators) / totals, np.nan)


def cascade_error(
    spikes, rates, fs, sigma_s=0.2, average=True, smooth_prediction=False, groups=None
):
    """CASCADE error: summed absolute deviation of the predicted from the true rate.

    ``error = sum |rate - smoothed spikes| / sum smoothed spikes`` per trace
    (Rupprecht et al. 2021, Nat Neurosci), where the ground truth is smoothed
    with a Gaussian of standard deviation ``sigma_s`` (CASCADE's default
    training and evaluation smoothing is 0.2 s). The prediction is taken as the
    smoothed rate in spikes per frame, as CASCADE's network outputs it.

    Parameters
    ----------
    spikes : array-like of shape (n_traces, n_frames) or (n_frames,)
        True spike counts per frame.
    rates : array-like of the same shape
        Predicted spikes per frame (sums are compared, so scale matters).
    fs : float
        Frame rate in Hz.
    sigma_s : float, default=0.2
        Standard deviation of the Gaussian smoothing kernel, in seconds.
    average : bool, default=True
        Return the mean over traces (ignoring NaN) instead of per-trace values.
    smooth_prediction : bool, default=False
        Smooth the prediction with the same kernel (for discrete spike predictions).
    groups : array-like of shape (n_traces,), default=None
        Pool the sums of traces with the same label (e.g. the trials of one
        neuron, as CASCADE scores neurons) before taking the ratio; the result
        then has one value per group, in order of first appearance.

    Returns
    -------
    error : float or ndarray of shape (n_traces,)
        0 is perfect; traces without spikes are NaN (with a warning).

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.metrics import cascade_error
    >>> spikes = np.zeros((1, 200)); spikes[0, [50, 120]] = 1
    >>> round(cascade_error(spikes, spikes, fs=100.0, smooth_prediction=True), 6)
    0.0
    """
    pairs = _smoothed_sums(spikes, rates, fs, sigma_s, smooth_prediction)
    num = _pool([np.abs(r - s).sum() for s, r in pairs], groups, len(pairs))
    totals = _pool([s.sum() for s, _ in pairs], groups, len(pairs))
    return _reduce(_ratio(num, totals, "CASCADE error"), average)


def cascade_bias(
    spikes, rates, fs, sigma_s=0.2, average=True, smooth_prediction=False, groups=None
):
    """CASCADE bias: relative over- (positive) or under-estimate (negative) of spikes.

    ``bias = sum (rate - smoothed spikes) / sum smoothed spikes`` per trace,
    with the smoothing of :func:`cascade_error`.

    Parameters
    ----------
    spikes : array-like of shape (n_traces, n_frames) or (n_frames,)
        True spike counts per frame.
    rates : array-like of the same shape
        Predicted spikes per frame.
    fs : float
        Frame rate in Hz.
    sigma_s : float, default=0.2
        Standard deviation of the Gaussian smoothing kernel, in seconds.
    average : bool, default=True
        Return the mean over traces (ignoring NaN) instead of per-trace values.
    smooth_prediction : bool, default=False
        Smooth the prediction with the same kernel.
    groups : array-like of shape (n_traces,), default=None
        Pool the sums of traces with the same label (e.g. the trials of one
        neuron) before taking the ratio, as for :func:`cascade_error`.

    Returns
    -------
    bias : float or ndarray of shape (n_traces,)

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.metrics import cascade_bias
    >>> spikes = np.zeros((1, 200)); spikes[0, [50, 120]] = 1
    >>> round(cascade_bias(spikes, 0.5 * spikes, fs=100.0, smooth_prediction=True), 6)
    -0.5
    """
    pairs = _smoothed_sums(spikes, rates, fs, sigma_s, smooth_prediction)
    num = _pool([(r - s).sum() for s, r in pairs], groups, len(pairs))
    totals = _pool([s.sum() for s, _ in pairs], groups, len(pairs))
    return _reduce(_ratio(num, totals, "CASCADE bias"), average)


def noise_level(calcium, fs):
    """CASCADE's noise level nu of each dF/F trace, in %·s^-1/2.

    ``nu = 100 * median(|dF/F(t+1) - dF/F(t)|) / sqrt(fs)`` over the frames of
    each trace (NaN padding ignored). About 1 is excellent, 3-4 decent, above 5
    poor. For white Gaussian noise of standard deviation sigma,
    ``nu = 100 * 0.954 * sigma / sqrt(fs)``.

    Parameters
    ----------
    calcium : array-like of shape (n_traces, n_frames) or (n_frames,)
        dF/F traces, NaN-padded at the end.
    fs : float
        Frame rate in Hz.

    Returns
    -------
    nu : ndarray of shape (n_traces,)
        NaN for traces with fewer than 2 frames.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.metrics import noise_level
    >>> noise_level([[0.0, 0.1, 0.0, 0.1, 0.0]], fs=100.0)
    array([1.])
    """
    calcium = check_traces(calcium, allow_nan_rows=True)
    fs = check_fs(fs)
    nu = np.full(len(calcium), np.nan)
    for i, n in enumerate(trace_lengths(calcium)):
        if n >= 2:
            nu[i] = 100.0 * np.median(np.abs(np.diff(calcium[i, :n]))) / np.sqrt(fs)
    return nu


#: ``scoring=spikefinder_scorer``: mean SpikeFinder correlation at 100 Hz.
spikefinder_scorer = make_scorer(spikefinder_correlation)
#: ``scoring=cascade_error_scorer``: negated mean CASCADE error at 100 Hz.
cascade_error_scorer = make_scorer(cascade_error, greater_is_better=False, fs=100.0)
#: ``scoring=cascade_bias_scorer``: mean CASCADE bias at 100 Hz (closest to 0 is best;
#: reported as is, so use it for reporting rather than model selection).
cascade_bias_scorer = make_scorer(cascade_bias, fs=100.0)

#: Scorers by name, for ``cross_validate(..., scoring=SCORERS)``. For another
#: frame rate build one with ``make_scorer(spikefinder_correlation, fs=30.0)``.
SCORERS = {
    "spikefinder": spikefinder_scorer,
    "cascade_error": cascade_error_scorer,
    "cascade_bias": cascade_bias_scorer,
}
