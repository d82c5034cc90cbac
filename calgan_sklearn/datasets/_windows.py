"""Fixed-length windows cut from NaN-padded traces."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._validation import check_spikes, check_traces
from ..signal import trace_lengths

__all__ = ["make_windows"]

_TARGETS = ("center", "count", "subwindow", None)


def make_windows(
    calcium, spikes=None, window=64, stride=None, target="center", groups=None, center_width=1
):
    """Cut fixed-length windows from traces, skipping windows that touch NaN padding.

    Parameters
    ----------
    calcium : array-like of shape (n_traces, n_frames)
        Traces, NaN-padded at the end.
    spikes : array-like of shape (n_traces, n_frames), default=None
        Spike counts per frame; ``None`` gives no targets.
    window : int, default=64
        Window length in frames.
    stride : int, default=None
        Step between window starts; ``None`` means ``window // 4`` (windows
        overlap by 3/4, so a recording of n frames gives about 4n/window of them).
    target : {"center", "count", "subwindow"} or None, default="center"
        ``"center"``: 1 if any spike falls in the ``center_width`` central
        frames, else 0; ``"count"``: number of spikes in those frames (int);
        ``"subwindow"``: the spike counts of the whole window; ``None``: no targets.
    groups : array-like of shape (n_traces,), default=None
        Per-trace labels (e.g. ``data.neuron`` or ``data.dataset``) repeated for
        each window, for ``GroupKFold``; default is the trace index.
    center_width : int, default=1
        Number of central frames for ``"center"`` and ``"count"``; they start at
        frame ``(window - center_width) // 2`` of the window.

    Returns
    -------
    X : ndarray of shape (n_windows, window)
        Calcium windows (a copy of the selected windows only).
    y : ndarray of shape (n_windows,) or (n_windows, window), or None
        Targets.
    groups : ndarray of shape (n_windows,)
        Group label of each window.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.datasets import make_windows
    >>> calcium = np.array([[0., 1, 2, 3, 4, 5], [0, 1, 2, 3, np.nan, np.nan]])
    >>> spikes = np.array([[0., 0, 1, 0, 0, 0], [0, 1, 0, 0, np.nan, np.nan]])
    >>> X, y, g = make_windows(calcium, spikes, window=3, stride=1)
    >>> X.shape, y.tolist(), g.tolist()
    ((6, 3), [0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 1, 1])
    """
    calcium = check_traces(calcium)
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {list(_TARGETS)}, got {target!r}.")
    window, stride, center_width = _check_sizes(window, stride, center_width)
    if spikes is not None:
        spikes = check_spikes(spikes, calcium)
    if groups is None:
        groups = np.arange(len(calcium))
    groups = np.asarray(groups)
    if groups.shape != (len(calcium),):
        raise ValueError(
            f"groups has shape {groups.shape}; expected one label per trace ({len(calcium)},)."
        )
    if calcium.shape[1] < window:
        raise ValueError(f"window={window} is longer than the traces ({calcium.shape[1]} frames).")
    lengths = trace_lengths(calcium)
    n_starts = calcium.shape[1] - window + 1
    starts = np.arange(0, n_starts, stride)
    # a window [s, s + window) is usable when it ends within the trace
    ok = starts[None, :] + window <= lengths[:, None]
    rows, cols = np.nonzero(ok)
    begin = starts[cols]
    X = sliding_window_view(calcium, window, axis=1)[rows, begin]
    y = None
    if spikes is not None and target is not None:
        sw = sliding_window_view(spikes, window, axis=1)[rows, begin]
        c0 = (window - center_width) // 2
        if target == "subwindow":
            y = sw
        else:
            counts = sw[:, c0 : c0 + center_width].sum(axis=1)
            y = (counts > 0).astype(int) if target == "center" else np.rint(counts).astype(int)
    return X, y, groups[rows]


def _check_sizes(window, stride, center_width):
    for name, value in (("window", window), ("center_width", center_width)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    window, center_width = int(window), int(center_width)
    if center_width > window:
        raise ValueError(f"center_width={center_width} is larger than window={window}.")
    if stride is None:
        stride = max(window // 4, 1)
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}.")
    return window, int(stride), center_width
