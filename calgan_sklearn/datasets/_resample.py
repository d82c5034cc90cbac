"""Moving traces between frame rates without losing spikes.

Fluorescence is a sampled signal: it is low-pass filtered before it is
downsampled and then linearly interpolated onto the new grid. Spikes are counts:
they are binned from spike times, or re-binned from counts by interpolating the
cumulative count, so the total number of spikes never changes.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .._validation import check_fs

__all__ = ["resample_calcium", "bin_spike_times", "rebin_counts", "resample_traces"]


def _n_frames_out(n_in, fs_in, fs_out):
    # frames whose start time lies inside the original recording
    return max(int(np.floor((n_in - 1) * fs_out / fs_in + 1e-9)) + 1, 1)


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
    >>> from calgan_sklearn.datasets import resample_calcium
    >>> resample_calcium(np.arange(5.0), 1.0, 2.0)
    array([0. , 0.5, 1. , 1.5, 2. , 2.5, 3. , 3.5, 4. ])
    """
    values = np.asarray(values, dtype=float)
    fs_in, fs_out = check_fs(fs_in, "fs_in"), check_fs(fs_out, "fs_out")
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
    >>> from calgan_sklearn.datasets import bin_spike_times
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

    Examples
    --------
    >>> from calgan_sklearn.datasets import rebin_counts
    >>> rebin_counts([0, 1, 0, 2], 100.0, 50.0)
    array([1., 2.])
    """
    counts = np.asarray(counts, dtype=float)
    fs_in, fs_out = check_fs(fs_in, "fs_in"), check_fs(fs_out, "fs_out")
    if n_out is None:
        n_out = _n_frames_out(len(counts), fs_in, fs_out)
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    edges_in = np.arange(len(counts) + 1) / fs_in
    edges_out = np.arange(n_out + 1) / fs_out
    cum_out = np.interp(edges_out, edges_in, cum)
    out = np.diff(cum_out)
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
    """
    from .._validation import trace_lengths

    X = np.asarray(X, dtype=float)
    if kind not in ("calcium", "counts"):
        raise ValueError(f"kind must be 'calcium' or 'counts', got {kind!r}.")
    lengths = trace_lengths(X)
    rows = []
    for i, n in enumerate(lengths):
        x = X[i, :n]
        if kind == "calcium":
            r = resample_calcium(x, fs_in, fs_out) if n else x
            if n_out is not None:
                r = _fit_length(r, int(n_out[i]))
        else:
            r = rebin_counts(x, fs_in, fs_out, None if n_out is None else int(n_out[i]))
        rows.append(r)
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _fit_length(x, n):
    if len(x) >= n:
        return x[:n]
    if len(x) == 0:
        warnings.warn("resampling an empty trace", UserWarning, stacklevel=3)
        return np.full(n, np.nan)
    return np.concatenate([x, np.full(n - len(x), x[-1])])
