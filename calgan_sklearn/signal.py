"""Operations on calcium traces: noise, normalisation, resampling, NaN padding.

A set of traces is a float array ``(n_traces, n_frames)``, NaN-padded at the
end, at a frame rate ``fs`` in Hz. Every loader, estimator and metric of the
package uses the functions here, so each operation exists once:

- noise: :func:`noise_sd` (the robust noise SD of a trace or window) and
  :func:`robust_sd`;
- normalisation: :func:`normalize`, :func:`trace_scale`, :func:`rolling_baseline`;
- resampling: :func:`resample_calcium`, :func:`rebin_counts`,
  :func:`bin_spike_times`, :func:`resample_traces` (between frame rates, spikes
  preserved), :func:`group_means`, :func:`spread_groups`, :func:`rebin_frames`
  (means or sums over groups of frames);
- NaN padding: :func:`trace_lengths`, :func:`unpad_traces`,
  :func:`pad_traces`, :func:`map_traces`.

**The normalize parameter.** Every estimator that rescales its input has a
parameter ``normalize``; its values mean the same everywhere (each estimator
accepts those that fit it):

``"noise"``
    Each trace (each window, for the window models) in units of its robust
    noise SD (:func:`noise_sd`), so recordings in arbitrary units look alike.
    Estimators that need a zero baseline subtract one first (the median for
    ``SlidingWindowInference``, each window's 20th percentile for the window
    models, a low or running percentile for ``DeepSpikeInference``, whose
    inputs are in units of ten noise SDs); the classical baselines estimate
    the baseline themselves.
``"zscore"``
    Each trace minus its mean, divided by its standard deviation.
``"spread"``
    Each trace minus its baseline, divided by the difference between its
    95th and 5th percentiles.
``"global"``
    One offset and one scale for all data: the mean and standard deviation of
    the training data, learned in ``fit``.
``None``
    The input as given.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d, percentile_filter, uniform_filter1d

__all__ = [
    "NORMALIZE_METHODS",
    "noise_sd",
    "robust_sd",
    "trace_scale",
    "normalize",
    "rolling_baseline",
    "resample_calcium",
    "bin_spike_times",
    "rebin_counts",
    "resample_traces",
    "group_means",
    "spread_groups",
    "spread_groups_by_rise",
    "timing_features",
    "rebin_frames",
    "trace_lengths",
    "unpad_traces",
    "pad_traces",
    "map_traces",
]

#: Values of the ``normalize`` parameter (see the module docstring); ``None`` too.
NORMALIZE_METHODS = ("noise", "zscore", "spread", "global")

#: Median absolute deviation to standard deviation, for Gaussian data.
_MAD_TO_SD = 1.4826
#: Scales at or below this are treated as zero.
_TINY = 1e-12


# --------------------------------------------------------------------------- #
# Noise
# --------------------------------------------------------------------------- #
def robust_sd(X, axis=-1, *, center=True, overwrite_input=False):
    """Standard deviation from the median absolute deviation, along ``axis``.

    ``1.4826 * median(|x - median(x)|)`` equals the standard deviation for
    Gaussian data and ignores the few large values that spikes add.

    Parameters
    ----------
    X : array-like
        Values without NaN.
    axis : int, default=-1
        Axis along which the spread is taken.
    center : bool, default=True
        Subtract the median first; ``False`` takes ``1.4826 * median(|x|)``,
        the spread around zero.
    overwrite_input : bool, default=False
        Let the computation reorder and overwrite ``X`` (a float64 array the
        caller no longer needs), so it costs no copy of it.

    Returns
    -------
    sd : float or ndarray
        A float for 1-D input, else an array without ``axis``.

    Examples
    --------
    >>> from calgan_sklearn.signal import robust_sd
    >>> robust_sd([0.0, 1.0, 1.0, 2.0, 100.0])
    1.4826
    """
    X = np.asarray(X, dtype=np.float64)
    out = X if overwrite_input else None  # else the first step makes the one copy
    if center:
        median = np.median(X, axis=axis, keepdims=True, overwrite_input=overwrite_input)
        X = np.subtract(X, median, out=out)
        np.abs(X, out=X)
    else:
        X = np.abs(X, out=out)
    sd = _MAD_TO_SD * np.median(X, axis=axis, overwrite_input=True)
    return float(sd) if np.ndim(sd) == 0 else sd


def noise_sd(X, axis=-1, *, center=True):
    """Noise standard deviation of each trace (or window) from its first differences.

    Frame-to-frame differences of a slow calcium signal are dominated by noise;
    for white noise of SD ``sigma`` they have SD ``sigma * sqrt(2)``, and
    :func:`robust_sd` of them ignores the few large steps that spikes cause.
    Centring the steps on their median removes a steady slope (drift) from a
    whole trace; the window models do not centre, so a window inside a
    decaying transient keeps the slope in its scale.
    With fewer than 8 steps, or where that estimate is zero (fewer than half
    the steps differ, as in mostly constant traces), the root mean square step
    is used instead; a constant trace gets ``1e-12``, a single frame ``1.0``,
    so dividing by the result is always safe. NaN frames (the padding of
    traces of different lengths, gaps) are left out, so a NaN-padded trace
    gets the SD of its frames; a trace without finite frames gets NaN.

    Parameters
    ----------
    X : array-like of shape (n_frames,) or (..., n_frames)
        Traces or windows, NaN-padded or not.
    axis : int, default=-1
        Time axis.
    center : bool, default=True
        Whether the steps are centred on their median (see :func:`robust_sd`).

    Returns
    -------
    sd : float or ndarray
        A float for one trace, else one value per trace.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import noise_sd
    >>> x = np.random.default_rng(0).normal(scale=2.0, size=(2, 10_000))
    >>> np.round(noise_sd(x), 1)
    array([2., 2.])
    >>> noise_sd(np.ones(50))
    1e-12
    """
    X = np.moveaxis(np.asarray(X, dtype=np.float64), axis, -1)
    shape, n = X.shape[:-1], X.shape[-1]
    finite = np.isfinite(X)
    if not finite.all():
        # rows with NaN one by one, on their finite frames
        X, finite = X.reshape(-1, n), finite.reshape(-1, n)
        full = finite.all(axis=1)
        sd = np.full(len(X), np.nan)
        if full.any():
            sd[full] = noise_sd(X[full], center=center)
        for i in np.flatnonzero(~full & finite.any(axis=1)):
            sd[i] = noise_sd(X[i][finite[i]], center=center)
        sd = sd.reshape(shape)
        return float(sd) if sd.ndim == 0 else sd
    if n < 2:
        sd = np.ones(shape)
    else:
        X = X.reshape(-1, n)
        d = np.diff(X, axis=1)
        # d is ours to overwrite: a long trace costs one array of differences
        sd = robust_sd(d, axis=1, center=center, overwrite_input=True)
        sd = np.atleast_1d(sd / np.sqrt(2.0))
        del d
        weak = ~(np.isfinite(sd) & (sd > 0)) | (n - 1 < 8)
        if weak.any():
            dw = np.diff(X[weak], axis=1)
            sd[weak] = np.sqrt(np.mean(dw * dw, axis=1) / 2.0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, _TINY).reshape(shape)
    return float(sd) if sd.ndim == 0 else sd


# --------------------------------------------------------------------------- #
# Normalisation
# --------------------------------------------------------------------------- #
def trace_scale(X, method="noise", axis=-1):
    """The divisor :func:`normalize` uses: noise SD, standard deviation or spread.

    Parameters
    ----------
    X : array-like of shape (n_frames,) or (..., n_frames)
        Traces or windows without NaN.
    method : {"noise", "zscore", "spread"}, default="noise"
        ``"noise"``: :func:`noise_sd`; ``"zscore"``: the standard deviation;
        ``"spread"``: 95th minus 5th percentile. A standard deviation or spread
        of zero (a constant trace) gives 1.
    axis : int, default=-1
        Time axis.

    Returns
    -------
    scale : float or ndarray
        A float for one trace, else one value per trace.

    Examples
    --------
    >>> from calgan_sklearn.signal import trace_scale
    >>> round(trace_scale([0.0, 1.0, 2.0, 3.0, 4.0], "spread"), 6)
    3.6
    """
    X = np.asarray(X, dtype=np.float64)
    if method == "noise":
        return noise_sd(X, axis=axis)
    if method == "zscore":
        scale = np.std(X, axis=axis)
    elif method == "spread":
        p5, p95 = np.percentile(X, [5.0, 95.0], axis=axis)
        scale = p95 - p5
    else:
        raise ValueError(
            f"method must be 'noise', 'zscore' or 'spread' for a per-trace scale, got {method!r}."
        )
    scale = np.where(np.isfinite(scale) & (scale > _TINY), scale, 1.0)
    return float(scale) if scale.ndim == 0 else scale


def normalize(X, method="noise", *, baseline=None, axis=-1):
    """Normalise each trace (or window): subtract a location, divide by a scale.

    Parameters
    ----------
    X : array-like of shape (n_frames,) or (..., n_frames)
        Traces or windows without NaN.
    method : {"noise", "zscore", "spread"} or None, default="noise"
        The scale (see :func:`trace_scale` and the module docstring);
        ``"zscore"`` always subtracts the mean. ``None`` returns ``X`` as is.
    baseline : float or None, default=None
        Percentile of each trace subtracted as its baseline with ``"noise"``
        and ``"spread"`` (e.g. 50 for the median); ``None`` subtracts nothing.
    axis : int, default=-1
        Time axis.

    Returns
    -------
    normalized : ndarray of the shape of ``X``
    loc, scale : float or ndarray
        What was subtracted and divided by, one value per trace.

    Examples
    --------
    >>> from calgan_sklearn.signal import normalize
    >>> z, loc, scale = normalize([1.0, 3.0, 5.0, 3.0], "zscore")
    >>> z.tolist(), loc, scale
    ([-1.414..., 0.0, 1.414..., 0.0], 3.0, 1.414...)
    """
    X = np.asarray(X, dtype=np.float64)
    if method is None:
        return X, 0.0, 1.0
    scale = trace_scale(X, method, axis=axis)
    if method == "zscore":
        loc = np.mean(X, axis=axis)
    elif baseline is None:
        loc = 0.0
    else:
        loc = np.percentile(X, baseline, axis=axis)
    Z = X - _along(loc, axis) if method == "zscore" or baseline is not None else X
    return Z / _along(scale, axis), (float(loc) if np.ndim(loc) == 0 else loc), scale


def _along(values, axis):
    """Per-trace values shaped to broadcast against the traces along ``axis``."""
    return np.expand_dims(values, axis) if np.ndim(values) else values


def rolling_baseline(x, window, percentile=10.0, fs=30.0, bin_s=0.5):
    """Slowly varying baseline: a running low percentile of the trace.

    The trace is averaged in bins of ``bin_s`` seconds (which averages the
    noise away), the ``percentile`` of those bin means is taken over a running
    window of ``window`` seconds, and the result is interpolated back onto
    every frame. Cost is linear in the trace length.

    Parameters
    ----------
    x : 1-D ndarray
        One trace without NaN, at ``fs``.
    window : float
        Length of the running window in seconds; traces shorter than that get
        a window of their whole length.
    percentile : float, default=10.0
        Percentile of the bin means taken as the baseline.
    fs : float, default=30.0
        Frame rate of ``x`` in Hz.
    bin_s : float, default=0.5
        Bin length in seconds.

    Returns
    -------
    baseline : ndarray of the shape of ``x``

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import rolling_baseline
    >>> t = np.arange(18_000) / 30.0
    >>> drift = 5.0 * t / t[-1]  # a slow rise of 5 units over 10 minutes
    >>> x = drift + np.random.default_rng(0).normal(0, 0.1, t.size)
    >>> float(np.abs(rolling_baseline(x, 60.0, fs=30.0) - drift).max()) < 0.5
    True
    """
    x = np.asarray(x, dtype=np.float64)
    k = max(int(round(bin_s * fs)), 1)
    n_bins = len(x) // k
    if n_bins < 3:
        return np.full(len(x), np.percentile(x, percentile))
    means = x[: n_bins * k].reshape(n_bins, k).mean(axis=1)
    size = int(min(max(round(window / bin_s), 1), n_bins))
    base = percentile_filter(means, percentile, size=size, mode="nearest")
    centres = (np.arange(n_bins) + 0.5) * k - 0.5
    return np.interp(np.arange(len(x)), centres, base)


# --------------------------------------------------------------------------- #
# Resampling between frame rates
# --------------------------------------------------------------------------- #
def _n_frames_out(n_in, fs_in, fs_out):
    # frames whose start time lies inside the original recording
    return max(int(np.floor((n_in - 1) * fs_out / fs_in + 1e-9)) + 1, 1)


def _check_rates(fs_in, fs_out):
    from ._validation import check_fs  # _validation imports this module

    return check_fs(fs_in, "fs_in"), check_fs(fs_out, "fs_out")


def resample_calcium(values, fs_in, fs_out):
    """Resample one fluorescence trace to a new frame rate.

    Parameters
    ----------
    values : array-like of shape (n_frames,)
        One trace without NaN.
    fs_in, fs_out : float
        Frame rates in Hz before and after.

    Returns
    -------
    resampled : ndarray of shape (n_frames_out,)
        Frame ``k`` is the value at time ``k / fs_out``; the trace covers the
        same time span as the input. When downsampling, the trace is first
        smoothed with a Gaussian whose width matches the new frame interval,
        so noise does not alias.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import resample_calcium
    >>> resample_calcium(np.arange(5.0), 1.0, 2.0)
    array([0. , 0.5, 1. , 1.5, 2. , 2.5, 3. , 3.5, 4. ])
    """
    values = np.asarray(values, dtype=float)
    fs_in, fs_out = _check_rates(fs_in, fs_out)
    if values.ndim != 1:
        raise ValueError(f"values must be one trace (1-D), got shape {values.shape}.")
    if np.isclose(fs_in, fs_out, rtol=1e-9, atol=0):
        return values.copy()
    if fs_out < fs_in:
        # sigma chosen so the filter's -3 dB point is near the new Nyquist rate
        sigma = 0.4 * fs_in / fs_out
        values = gaussian_filter1d(values, sigma, mode="nearest")
    n_out = _n_frames_out(len(values), fs_in, fs_out)
    t_out = np.arange(n_out) / fs_out
    t_in = np.arange(len(values)) / fs_in
    return np.interp(t_out, t_in, values)


def bin_spike_times(spike_times, frame_times):
    """Count spikes per frame, each spike in exactly one frame.

    Frame ``k`` covers ``[t_k - dt/2, t_k + dt/2)`` around its time stamp, with
    ``dt`` the median frame interval, so a spike falls in the frame whose time
    stamp is nearest.

    Parameters
    ----------
    spike_times : array-like of shape (n_spikes,)
        Spike times in seconds; NaN entries are ignored.
    frame_times : array-like of shape (n_frames,)
        Increasing frame time stamps in seconds.

    Returns
    -------
    counts : ndarray of shape (n_frames,), float64
        Spike count per frame; ``counts.sum()`` equals the number of finite
        spike times inside the recording.
    n_outside : int
        Spikes before the first or after the last frame's interval (not counted).

    Examples
    --------
    >>> from calgan_sklearn.signal import bin_spike_times
    >>> bin_spike_times([0.04, 0.11, 0.12, 5.0], [0.0, 0.1, 0.2])
    (array([1., 2., 0.]), 1)
    """
    frame_times = np.asarray(frame_times, dtype=float)
    spikes = np.asarray(spike_times, dtype=float).ravel()
    spikes = spikes[np.isfinite(spikes)]
    if frame_times.ndim != 1 or len(frame_times) == 0:
        raise ValueError("frame_times must be a non-empty 1-D array of seconds.")
    if np.any(np.diff(frame_times) <= 0):
        raise ValueError("frame_times must be strictly increasing.")
    dt = np.median(np.diff(frame_times)) if len(frame_times) > 1 else 1.0
    edges = np.concatenate(
        [
            [frame_times[0] - dt / 2],
            (frame_times[1:] + frame_times[:-1]) / 2,
            [frame_times[-1] + dt / 2],
        ]
    )
    idx = np.searchsorted(edges, spikes, side="right") - 1
    inside = (idx >= 0) & (idx < len(frame_times))
    counts = np.bincount(idx[inside], minlength=len(frame_times)).astype(float)
    return counts, int((~inside).sum())


def _rebin_cumulative(x, edges_in, edges_out):
    """Sums of ``x`` between ``edges_out``, interpolating its cumulative sum at ``edges_in``.

    Returns the sums, the cumulative sum and its interpolated values.
    """
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64))])
    cum_out = np.interp(edges_out, edges_in, cum)
    return np.diff(cum_out), cum, cum_out


def rebin_counts(counts, fs_in, fs_out, n_out=None):
    """Re-bin per-frame counts (or rates) to another frame rate, preserving the total.

    The cumulative count is interpolated at the new frame edges and differenced,
    so ``rebin_counts(c, a, b).sum() == c.sum()`` up to float round-off whenever
    the new grid covers the old one.

    Parameters
    ----------
    counts : array-like of shape (n_frames,)
        Counts per frame at ``fs_in``, no NaN.
    fs_in, fs_out : float
        Frame rates in Hz.
    n_out : int, optional
        Number of output frames; defaults to the same number of frames as
        :func:`resample_calcium` gives, so calcium and spikes stay aligned.

    Returns
    -------
    rebinned : ndarray of shape (n_out,)

    See Also
    --------
    rebin_frames : Sums over whole output frames only, nothing carried over.

    Examples
    --------
    >>> from calgan_sklearn.signal import rebin_counts
    >>> rebin_counts([0, 1, 0, 2], 100.0, 50.0)
    array([1., 2.])
    """
    counts = np.asarray(counts, dtype=float)
    fs_in, fs_out = _check_rates(fs_in, fs_out)
    if n_out is None:
        n_out = _n_frames_out(len(counts), fs_in, fs_out)
    edges_in = np.arange(len(counts) + 1) / fs_in
    edges_out = np.arange(n_out + 1) / fs_out
    out, cum, cum_out = _rebin_cumulative(counts, edges_in, edges_out)
    if edges_out[-1] < edges_in[-1] - 1e-9:
        # the last output frame takes what is left, so nothing is lost
        out[-1] += cum[-1] - cum_out[-1]
    return out


def resample_traces(X, fs_in, fs_out, kind="calcium", n_out=None):
    """Resample a NaN-padded set of traces ``(n_traces, n_frames)`` to ``fs_out``.

    Parameters
    ----------
    X : ndarray of shape (n_traces, n_frames)
        Traces, NaN-padded at the end.
    fs_in, fs_out : float
        Frame rates in Hz.
    kind : {"calcium", "counts"}, default="calcium"
        ``"calcium"`` interpolates (:func:`resample_calcium`); ``"counts"``
        re-bins preserving totals (:func:`rebin_counts`).
    n_out : array-like of int, optional
        Output length of each trace (e.g. to map predictions back onto the
        input's frames). Defaults to the frames covering the same time span.

    Returns
    -------
    resampled : ndarray of shape (n_traces, max(n_out)), NaN-padded

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import resample_traces
    >>> resample_traces([[0.0, 1.0, 2.0], [0.0, 1.0, np.nan]], 1.0, 2.0)
    array([[0. , 0.5, 1. , 1.5, 2. ],
           [0. , 0.5, 1. , nan, nan]])
    """
    X = np.asarray(X, dtype=float)
    if kind not in ("calcium", "counts"):
        raise ValueError(f"kind must be 'calcium' or 'counts', got {kind!r}.")
    rows = []
    for i, x in enumerate(unpad_traces(X)):
        if kind == "calcium":
            r = resample_calcium(x, fs_in, fs_out) if len(x) else x
            if n_out is not None:
                r = _fit_length(r, int(n_out[i]))
        else:
            r = rebin_counts(x, fs_in, fs_out, None if n_out is None else int(n_out[i]))
        rows.append(r)
    return pad_traces(rows)


def _fit_length(x, n):
    if len(x) >= n:
        return x[:n]
    if len(x) == 0:
        warnings.warn("resampling an empty trace", UserWarning, stacklevel=3)
        return np.full(n, np.nan)
    return np.concatenate([x, np.full(n - len(x), x[-1])])


# --------------------------------------------------------------------------- #
# Groups of frames
# --------------------------------------------------------------------------- #
def float_trace(x):
    """``x`` as a float array: float32 stays float32 (half the memory of long
    traces), anything else becomes float64; no copy where none is needed."""
    x = np.asarray(x)
    return x if x.dtype == np.float32 else x.astype(np.float64, copy=False)


def group_means(x, factor):
    """Means of consecutive groups of ``factor`` frames (the last group may be shorter).

    Parameters
    ----------
    x : 1-D ndarray
        One trace without NaN.
    factor : int
        Frames per group.

    Returns
    -------
    means : ndarray of shape (ceil(len(x) / factor),)
        float32 for float32 traces, float64 otherwise.

    See Also
    --------
    spread_groups : Back from groups to frames.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import group_means
    >>> group_means(np.arange(5.0), 2)
    array([0.5, 2.5, 4. ])
    """
    x = float_trace(x)
    if factor == 1:
        return x
    n = len(x)
    full = n // factor * factor
    out = x[:full].reshape(-1, factor).mean(axis=1)
    if full < n:
        out = np.append(out, x[full:].mean())
    return out


def spread_groups(totals, factor, n):
    """Spread each group's total evenly over its frames (inverse of :func:`group_means`).

    Parameters
    ----------
    totals : 1-D ndarray
        One value per group of ``factor`` frames (e.g. expected spikes).
    factor : int
        Frames per group.
    n : int
        Frames of the original trace; the last group covers what is left.

    Returns
    -------
    per_frame : ndarray of shape (n,)
        Sums over each group to its total.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import spread_groups
    >>> spread_groups(np.array([1.0, 2.0, 4.0]), 2, 5)
    array([0.5, 0.5, 1. , 1. , 4. ])
    """
    if factor == 1:
        return totals[:n]
    out = np.repeat(totals / factor, factor)[:n]
    rest = n - (len(totals) - 1) * factor
    if 0 < rest < factor:  # the last, shorter group
        out[-rest:] = totals[-1] / rest
    return out


#: Smoothings (frames) of :func:`timing_features`.
TIMING_SIGMAS = (1.0, 2.0, 3.0, 5.0)
#: Hinges (noise SDs) of :func:`timing_features`.
_TIMING_KNOTS = (0.0, 1.0, 2.0, 4.0)
#: Frames either side that :func:`timing_features` of a frame depends on.
_TIMING_REACH = int(4 * max(TIMING_SIGMAS) + 0.5) + 2


def _difference_norms(sigma):
    """Norms of the first and second differences of a Gaussian of SD ``sigma``."""
    impulse = np.zeros(2 * int(4 * sigma + 1) + 3)  # the kernel and a zero either side
    impulse[len(impulse) // 2] = 1.0
    first = np.diff(gaussian_filter1d(impulse, sigma))
    return float(np.sqrt(np.sum(first**2))), float(np.sqrt(np.sum(np.diff(first) ** 2)))


def _trace_noise(calcium):
    """Noise SD of a whole trace, as a median over pieces of 1 M frames (no full copy)."""
    n, piece = len(calcium), 1_000_000
    return float(
        np.median([noise_sd(calcium[i : i + piece + 1]) for i in range(0, max(n - 1, 1), piece)])
    )


def timing_features(calcium, noise=None):
    """Per-frame features of where a spike lies, from the rise of the calcium.

    For each smoothing in :data:`TIMING_SIGMAS` (Gaussian SD in frames): the
    smoothed calcium's first difference and the change of that difference,
    each in noise SDs (what white noise of the trace's level would give), as
    ``log1p`` of hinges at 0, 1, 2 and 4 SDs and of the negative part. They
    are what :meth:`DeepSpikeInference.calibrate_timing
    <calgan_sklearn.models.DeepSpikeInference.calibrate_timing>` weighs to
    place spikes within a network frame.

    Parameters
    ----------
    calcium : 1-D ndarray
        A trace without NaN.
    noise : float, optional
        Its noise SD; by default :func:`noise_sd` of the whole trace.

    Returns
    -------
    features : ndarray of shape (n_frames, 40), float32
        Non-negative features; row ``t`` depends on frames ``t - 22`` to ``t + 22``.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import timing_features
    >>> calcium = np.zeros(60)
    >>> calcium[30:] = 1.0  # a step at frame 30
    >>> calcium += np.random.default_rng(0).normal(0, 0.05, 60)
    >>> features = timing_features(calcium)
    >>> features.shape, int(np.argmax(features[:, 0]))  # the derivative peaks at the step
    ((60, 40), 30)
    """
    c = np.asarray(calcium, dtype=np.float64)
    if noise is None:
        noise = _trace_noise(c)
    cols = []
    for sigma in TIMING_SIGMAS:
        first_norm, second_norm = _difference_norms(sigma)
        smooth = gaussian_filter1d(c, sigma)
        first = np.diff(smooth, prepend=smooth[0])
        del smooth
        second = np.diff(first, prepend=first[0]) / (noise * second_norm + _TINY)
        first /= noise * first_norm + _TINY
        for value in (first, second):
            for knot in _TIMING_KNOTS:
                cols.append(np.log1p(np.maximum(value - knot, 0.0)).astype(np.float32))
            cols.append(np.log1p(np.maximum(-value, 0.0)).astype(np.float32))
    return np.stack(cols, axis=1)


def _group_density(totals, factor, n, lo, hi):
    """Each group's rate per frame at its centre, interpolated linearly over frames
    ``lo`` to ``hi`` of a trace of ``n`` frames (the last group may be shorter)."""
    g0, g1 = max(lo // factor - 1, 0), min(hi // factor + 2, len(totals))
    sizes = np.full(g1 - g0, float(factor))
    if g1 == len(totals):
        sizes[-1] = n - (len(totals) - 1) * factor
    centres = np.arange(g0, g1) * float(factor) + (sizes - 1) / 2.0
    density = np.asarray(totals[g0:g1], dtype=np.float64) / sizes
    return np.interp(np.arange(lo, hi, dtype=np.float64), centres, density)


def spread_groups_by_rise(
    totals,
    calcium,
    factor,
    *,
    sigma=3.0,
    threshold=2.0,
    floor=1.0,
    coef=None,
    block=250_000,
    out=None,
):
    """Spread group totals over the frames of each group where the calcium rises.

    The inverse of :func:`group_means` for spike rates estimated on groups of
    ``factor`` frames, using the full-rate ``calcium`` to place them in time:
    the groups' rates are interpolated linearly between group centres, then
    weighted, frame by frame, by how steeply the lightly smoothed calcium
    rises there relative to its neighbourhood (``2 * factor`` frames), since
    a spike shows where fluorescence rises. Rises within ``threshold`` noise
    SDs of the smoothed derivative count as none, and every frame keeps a
    weight of ``floor`` such SDs, so noisy traces keep the interpolated rates
    and clean ones get spike times sharper than a group. The result is scaled
    to sum to ``totals.sum()``: only the timing changes, not the count.

    Parameters
    ----------
    totals : 1-D ndarray
        One value per group of ``factor`` frames (e.g. expected spikes).
    calcium : 1-D ndarray
        The trace at full rate, ``n`` frames without NaN.
    factor : int
        Frames per group; 1 returns ``totals`` unchanged.
    sigma : float, default=3.0
        SD (frames) of the Gaussian that smooths the calcium before its
        derivative is taken.
    threshold : float, default=2.0
        Rises below this many noise SDs of the derivative are ignored.
    floor : float, default=1.0
        Weight (in noise SDs of the derivative) every frame keeps.
    coef : ndarray of shape (40,), optional
        Learned timing weights: each frame's weight is then
        ``exp(timing_features(calcium) @ coef)`` instead of the rise rule
        (``sigma``, ``threshold`` and ``floor`` are unused). Set by
        :meth:`DeepSpikeInference.calibrate_timing
        <calgan_sklearn.models.DeepSpikeInference.calibrate_timing>`.
    block : int, default=250,000
        Frames processed at once (with margins), which bounds the memory.
    out : ndarray of shape (n,), optional
        Array (e.g. a row of a memory map) the result is written to.

    Returns
    -------
    per_frame : ndarray of shape (n,)
        Non-negative values of each frame: ``out``, or a new float32 array.

    See Also
    --------
    spread_groups : The even spread.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import spread_groups_by_rise
    >>> calcium = np.zeros(40)
    >>> calcium[13:] = np.exp(-np.arange(27) / 10.0)  # a spike at frame 13
    >>> calcium += np.random.default_rng(0).normal(0, 0.01, 40)
    >>> totals = np.zeros(5)
    >>> totals[1] = 1.0  # one spike in frames 8-15
    >>> rates = spread_groups_by_rise(totals, calcium, 8, sigma=1.0)
    >>> int(np.argmax(rates)), round(float(rates.sum()), 2)
    (13, 1.0)
    """
    n = len(calcium)
    totals = np.asarray(totals)
    if out is None:
        out = np.empty(n, dtype=np.float32)
    if factor == 1:
        out[:] = totals[:n]
        return out
    # noise SD of the smoothed derivative: the frame noise (median over pieces
    # of 1 M frames: no copy of all steps of a long trace) times the norm of the
    # derivative-of-Gaussian kernel
    kernel_norm = _difference_norms(sigma)[0]
    noise = _trace_noise(calcium)
    scale = noise * kernel_norm
    width = 2 * factor
    margin = (int(4 * sigma + 2) if coef is None else _TIMING_REACH + 1) + width
    for start in range(0, n, block):
        stop = min(start + block, n)
        lo, hi = max(start - margin, 0), min(stop + margin, n)
        if coef is None:
            smooth = gaussian_filter1d(np.asarray(calcium[lo:hi], dtype=np.float64), sigma)
            rise = np.diff(smooth, prepend=smooth[0])
            del smooth
            rise -= threshold * scale
            np.maximum(rise, 0.0, out=rise)
            rise += floor * scale + _TINY
        else:
            rise = timing_features(calcium[lo:hi], noise) @ np.asarray(coef, dtype=np.float64)
            np.exp(np.clip(rise, -30.0, 30.0), out=rise)
        local = uniform_filter1d(rise, width, mode="nearest")
        rise /= local
        del local
        rise *= _group_density(totals, factor, n, lo, hi)
        out[start:stop] = rise[start - lo : stop - lo]
    total, spread = float(np.sum(totals, dtype=np.float64)), float(out.sum(dtype=np.float64))
    if spread > 0:
        out *= out.dtype.type(total / spread)
    return out


def rebin_frames(x, fs_in, fs_out, *, kind="calcium"):
    """Resample one trace by bin means (calcium) or bin sums (counts), any ratio.

    Output frame ``k`` covers input time ``[k, k + 1) * fs_in / fs_out`` (in
    input frames); partial input frames count in proportion to their overlap.
    Only whole output frames are made: the input's last partial one is dropped.

    Parameters
    ----------
    x : 1-D ndarray
        One trace without NaN.
    fs_in, fs_out : float
        Frame rates in Hz.
    kind : {"calcium", "counts"}, default="calcium"
        Means (calcium) or sums (counts) over each output frame.

    Returns
    -------
    rebinned : ndarray of shape (floor(len(x) * fs_out / fs_in),)

    See Also
    --------
    rebin_counts : Preserves the total, covering the whole input.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import rebin_frames
    >>> rebin_frames(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 2.0, 1.0, kind="counts")
    array([3., 7.])
    """
    step = fs_in / fs_out
    n_out = int(math.floor(len(x) / step))
    if n_out < 1:
        return np.zeros(0)
    edges = np.arange(n_out + 1) * step
    sums = _rebin_cumulative(x, np.arange(len(x) + 1), edges)[0]
    return sums / step if kind == "calcium" else sums


# --------------------------------------------------------------------------- #
# NaN padding
# --------------------------------------------------------------------------- #
def trace_lengths(traces):
    """Number of leading non-NaN frames of each trace (NaN padding is at the end).

    Parameters
    ----------
    traces : array-like of shape (n_traces, n_frames)

    Returns
    -------
    lengths : ndarray of shape (n_traces,), int
        Index of each trace's last finite frame plus one; 0 for all-NaN traces.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import trace_lengths
    >>> trace_lengths([[1.0, 2.0, np.nan], [1.0, np.nan, np.nan]])
    array([2, 1])
    """
    traces = np.asarray(traces)
    if traces.dtype.kind != "f":
        traces = traces.astype(float)  # float32 stays float32: no copy of the traces
    finite = ~np.isnan(traces)
    # index of the last finite value + 1; 0 for all-NaN rows
    rev = finite[:, ::-1]
    last = traces.shape[1] - np.argmax(rev, axis=1)
    return np.where(finite.any(axis=1), last, 0)


def unpad_traces(X):
    """The traces of a NaN-padded array without their padding, as a list of views.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import unpad_traces
    >>> unpad_traces(np.array([[1.0, 2.0], [3.0, np.nan]]))
    [array([1., 2.]), array([3.])]
    """
    X = np.asarray(X, dtype=float)
    return [X[i, :n] for i, n in enumerate(trace_lengths(X))]


def pad_traces(rows, n_frames=None):
    """Stack traces of different lengths into one NaN-padded float array.

    Parameters
    ----------
    rows : sequence of 1-D array-like
        Traces; they may themselves end in NaN.
    n_frames : int, optional
        Width of the result; defaults to the longest trace.

    Returns
    -------
    X : ndarray of shape (len(rows), n_frames)

    Examples
    --------
    >>> from calgan_sklearn.signal import pad_traces
    >>> pad_traces([[1.0, 2.0], [3.0]])
    array([[ 1.,  2.],
           [ 3., nan]])
    """
    width = max((len(r) for r in rows), default=0) if n_frames is None else n_frames
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def map_traces(X, func):
    """Apply ``func`` to the unpadded part of each trace; keep the shape and padding.

    Parameters
    ----------
    X : ndarray of shape (n_traces, n_frames)
        Traces, NaN-padded at the end.
    func : callable
        Takes one trace (1-D, no NaN) and returns an array of its length.

    Returns
    -------
    out : ndarray of shape (n_traces, n_frames)
        NaN exactly where ``X`` is padded.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.signal import map_traces
    >>> map_traces(np.array([[1.0, 2.0], [3.0, np.nan]]), lambda x: x - x.mean())
    array([[-0.5,  0.5],
           [ 0. ,  nan]])
    """
    out = np.full(np.shape(X), np.nan)
    for i, x in enumerate(unpad_traces(X)):
        if len(x):
            out[i, : len(x)] = func(x)
    return out
