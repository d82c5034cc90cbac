"""Input checks shared by loaders, metrics and every trace-level estimator.

One place says what a valid set of traces is, so every public function gives the
same clear message for the same mistake.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse

from .signal import trace_lengths

__all__ = [
    "check_fs",
    "check_spikes",
    "check_traces",
    "warn_implausible",
]


def _row_lengths(X):
    """Lengths of the rows of a sequence of sequences, else None."""
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        return None
    try:
        return [len(row) for row in X]
    except TypeError:
        return None


def check_traces(
    X, *, name="calcium", allow_nan_rows=False, min_frames=1, first=0, dtype=np.float64
):
    """Validate a set of traces and return it as a 2-D float array (float64 by default).

    Parameters
    ----------
    X : array-like of shape (n_traces, n_frames) or (n_frames,)
        Traces, NaN-padded at the end. A 1-D array is taken as one trace.
    name : str, default="calcium"
        Name used in error messages.
    allow_nan_rows : bool, default=False
        Whether traces that are entirely NaN are accepted.
    min_frames : int, default=1
        Minimum number of non-NaN frames every (non-empty) trace must have.
    first : int, default=0
        Number of the first trace of ``X`` in a larger set of traces that is
        checked in chunks; messages name traces by their number in that set.
    dtype : {np.float64, np.float32}, default=np.float64
        Floating type of the returned array (float32 halves the memory of a
        chunk of long traces).

    Returns
    -------
    X : ndarray of shape (n_traces, n_frames), of ``dtype``

    Raises
    ------
    ValueError
        If ``X`` is sparse or not numeric, has the wrong number of dimensions,
        holds infinite values, NaN in the middle of a trace, or all-NaN traces.
    """
    if sparse.issparse(X):
        raise ValueError(
            f"{name} is a sparse {type(X).__name__}, but traces must be a dense array of "
            "shape (n_traces, n_frames); convert it with .toarray()."
        )
    try:
        X = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        lengths = _row_lengths(X)
        if lengths is not None and len(set(lengths)) > 1:
            raise ValueError(
                f"{name} holds traces of different lengths ({min(lengths)} to {max(lengths)} "
                "frames); NaN-pad them at the end to one length, e.g. with "
                "calgan_sklearn.signal.pad_traces(traces)."
            ) from exc
        raise ValueError(
            f"{name} must be a numeric array of shape (n_traces, n_frames); "
            f"could not convert it to float: {exc}"
        ) from exc
    if X.ndim == 1:
        X = X[np.newaxis, :]
    if X.ndim != 2:
        raise ValueError(
            f"{name} must have shape (n_traces, n_frames), got an array with "
            f"{X.ndim} dimensions and shape {X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); at least one frame is needed.")
    if X.shape[1] >= min_frames and np.isfinite(X).all():
        return X  # the common case in one pass: no infinite values, no NaN at all
    if np.isinf(X).any():
        rows = first + np.unique(np.nonzero(np.isinf(X))[0])
        raise ValueError(
            f"{name} contains infinite values in trace(s) {rows[:10].tolist()}; "
            "replace them with finite values or NaN-pad the end of the trace."
        )
    lengths = trace_lengths(X)
    empty = first + np.flatnonzero(lengths == 0)
    if len(empty) and not allow_nan_rows:
        raise ValueError(
            f"{name} trace(s) {empty[:10].tolist()} contain only NaN; "
            "remove them before fitting or predicting."
        )
    n_nan_inside = np.isnan(X).sum(axis=1) - (X.shape[1] - lengths)
    bad = first + np.flatnonzero((n_nan_inside > 0) & (lengths > 0))
    if len(bad):
        raise ValueError(
            f"{name} trace(s) {bad[:10].tolist()} have NaN values before their last "
            "finite frame; only NaN padding at the end of a trace is supported. "
            "Interpolate over gaps (e.g. pandas.Series.interpolate) first."
        )
    short = np.flatnonzero((lengths > 0) & (lengths < min_frames))
    if len(short):
        raise ValueError(
            f"{name} trace(s) {(first + short[:10]).tolist()} have fewer than {min_frames} "
            f"frames (shortest has {int(lengths[short].min())})."
        )
    return X


def check_spikes(y, X=None, *, name="spikes", calcium_name="calcium"):
    """Validate spike counts, optionally against the calcium traces they belong to.

    Spike counts must be non-negative; fractional values are allowed (binned or
    smoothed rates) but negative values are not. Where ``X`` is given, shapes must
    match and spikes must be finite wherever calcium is.
    """
    y = check_traces(y, name=name, allow_nan_rows=True)
    if X is not None:
        if y.shape != X.shape:
            raise ValueError(
                f"{calcium_name} has shape {X.shape} but {name} has shape {y.shape}; "
                "both must be (n_traces, n_frames) and cover the same frames."
            )
        missing = np.isnan(y) & ~np.isnan(X)
        if missing.any():
            rows = np.unique(np.nonzero(missing)[0])
            lx, ly = trace_lengths(X), trace_lengths(y)
            r = int(rows[0])
            raise ValueError(
                f"{calcium_name} trace {r} has {lx[r]} frames but {name} has {ly[r]}; "
                "both must cover the same frames "
                f"(traces with this problem: {rows[:10].tolist()})."
            )
    if np.nanmin(y) < 0 if np.isfinite(y).any() else False:
        rows = np.unique(np.nonzero(y < 0)[0])
        raise ValueError(
            f"{name} must be non-negative spike counts; trace(s) {rows[:10].tolist()} "
            "have negative values."
        )
    return y


def check_fs(fs, name="fs"):
    """Validate a sampling rate in Hz."""
    try:
        fs = float(fs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a positive number in Hz, got {fs!r}.") from exc
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"{name} must be a positive number in Hz, got {fs!r}.")
    return fs


#: Frame rates of calcium imaging in practice (Hz); outside, a unit mistake is likely.
PLAUSIBLE_FS = (0.5, 2000.0)


def warn_implausible(X, fs, *, name="calcium", y=None):
    """Warn where the input most likely holds a user's mistake; never changes it.

    - ``fs`` outside :data:`PLAUSIBLE_FS`: a frame period in seconds (``0.033``
      for 30 Hz) or a rate in another unit;
    - far more traces than frames, each shorter than 2 s: traces were passed as
      columns (as ``pandas.read_csv`` of a SpikeFinder file gives them), not rows;
    - spike counts above one per millisecond: spike times or frame indices
      passed as counts.

    Parameters
    ----------
    X : ndarray of shape (n_traces, n_frames)
        Validated traces.
    fs : float
        Validated frame rate in Hz.
    name : str, default="calcium"
        Name used in the messages.
    y : ndarray of shape (n_traces, n_frames), default=None
        Validated spike counts.
    """
    low, high = PLAUSIBLE_FS
    if fs < low:
        warnings.warn(
            f"fs={fs:g} Hz is an implausibly low frame rate; fs is in Hz (frames per "
            f"second), not a frame period in seconds: {fs:g} s per frame is "
            f"fs={1.0 / fs:g}.",
            UserWarning,
            stacklevel=4,
        )
    elif fs > high:
        warnings.warn(
            f"fs={fs:g} Hz is an implausibly high frame rate for calcium imaging; fs is "
            f"in Hz (frames per second), e.g. 30.0, not in mHz or samples per minute.",
            UserWarning,
            stacklevel=4,
        )
    n_traces, n_frames = X.shape
    if n_traces > 2 * n_frames and n_frames < 2 * fs:
        warnings.warn(
            f"{name} has {n_traces} traces of only {n_frames} frames ({n_frames / fs:.2g} s "
            f"at fs={fs:g}); traces must be rows. If your data holds one trace per column "
            "(as a SpikeFinder CSV read with pandas.read_csv does), pass its transpose "
            "(X.T or df.to_numpy().T).",
            UserWarning,
            stacklevel=4,
        )
    if y is not None and np.isfinite(y).any():
        top = float(np.nanmax(y))
        if top > max(1000.0 / fs, 1.0) and top > 5:
            warnings.warn(
                f"spikes holds {top:g} spikes in one frame (more than one per millisecond "
                f"at fs={fs:g}); y must be spike counts per frame, not spike times or "
                "frame indices (turn times into counts with "
                "calgan_sklearn.datasets.bin_spike_times).",
                UserWarning,
                stacklevel=4,
            )


def warn_dropped(what, n, reason):
    """Warn that ``n`` items were dropped; nothing is dropped silently."""
    if n:
        warnings.warn(f"dropped {n} {what}: {reason}", UserWarning, stacklevel=3)
