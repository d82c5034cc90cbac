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

import contextlib
import warnings

import numpy as np

from ._validation import check_fs, check_spikes, check_traces, warn_implausible

__all__ = ["SpikeInferenceMixin"]

#: Most frames (traces x frames) that ``predict`` validates and infers at a time:
#: its memory is bounded whatever the number of traces (one trace at least).
PREDICT_CHUNK_FRAMES = 2_000_000


def _as_trace_array(X):
    """``X`` as a 2-D numeric ndarray without copying it (a memory map stays one).

    Anything else (lists, data frames, sparse or non-numeric input) goes through
    :func:`check_traces` whole, which converts it or says what is wrong.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiu" and X.ndim in (1, 2) and X.size:
        return X[np.newaxis] if X.ndim == 1 else X
    return check_traces(X)


def _check_out(out, shape):
    """The user's output array for ``predict(X, out=...)``, or a new float32 one."""
    if out is None:
        return np.empty(shape, np.float32)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype.kind != "f":
        raise ValueError(
            f"out must be a float array of the input's shape {shape}; got "
            f"{type(out).__name__} of shape {getattr(out, 'shape', None)} and dtype "
            f"{getattr(out, 'dtype', None)}. Make one with np.empty(X.shape, np.float32) "
            "or np.lib.format.open_memmap(path, mode='w+', dtype=np.float32, shape=X.shape)."
        )
    return out


def _drop_pages(array):
    """Let the pages of a memory-mapped ``array`` leave this process's resident memory.

    Pages of a file read (or written) through a memory map count as resident
    memory until the mapping is gone; dropping them (they stay in the page
    cache, written ones are kept) keeps streaming through a large file bounded.
    Does nothing for other arrays or where ``madvise`` is not available.
    """
    import mmap

    if getattr(array, "mode", None) == "c":  # copy-on-write: dropping would lose writes
        return
    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "_mmap", None) or getattr(array, "base", None)
    if array is not None and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):  # a closed or unsupported map
            array.madvise(mmap.MADV_DONTNEED)


#: glibc's M_MMAP_THRESHOLD (``mallopt``), and the value ``predict`` fixes it at.
_M_MMAP_THRESHOLD, _STREAM_MMAP_THRESHOLD = -3, 8 * 2**20
_heap_bounded = False


def _bound_heap_growth():
    """Fix glibc's mmap threshold at 8 MiB, once per process (Linux; else nothing).

    By default glibc raises the threshold above which ``malloc`` maps memory
    straight from the system each time such a block is freed, up to 32 MiB.
    Streaming thousands of long traces then serves arrays of a few MiB from
    the heap, which fragments and grows chunk after chunk: reading and
    predicting chunks of 256 traces of 108,000 frames grew resident memory by
    about 40 MB per chunk, about 20 MB with this (benchmarks/RESULTS.md). A
    fixed threshold keeps larger blocks out of the heap; it changes how memory
    is allocated, never what is computed.
    """
    global _heap_bounded
    if _heap_bounded:
        return
    _heap_bounded = True
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _STREAM_MMAP_THRESHOLD)
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to fix
        pass


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

    def _predict_in_chunks(
        self,
        X,
        predict_chunk,
        *,
        out=None,
        progress=False,
        dtype=np.float64,
        fill=False,
        workers=1,
    ):
        """Rates of all traces of ``X``, inferred chunk by chunk into a float32 array.

        ``X`` is neither copied nor converted as a whole (a float32 memory map
        stays on disk): chunks of traces of at most :data:`PREDICT_CHUNK_FRAMES`
        frames are validated (:func:`check_traces`, naming traces by their number
        in ``X``) and passed as float64 to ``predict_chunk(chunk, first)``, with
        ``first`` the number of the chunk's first trace; the rates it returns
        (the chunk's shape) are stored as float32. With ``progress``, a tqdm bar
        counts traces (neurons per second). ``out`` (see :func:`_check_out`), e.g.
        a memory map, receives the rates instead of a new array. ``dtype``: that
        of the chunks (float32 halves their memory); ``fill``: call
        ``predict_chunk(chunk, first, out=rows)`` to write the rates straight
        into their rows of the output, without a copy of the chunk's rates.
        ``workers``: chunks inferred at once, in threads (at most that many
        chunks are in memory); ``predict_chunk`` must then be thread-safe and
        release the GIL for most of its work (NumPy and TensorFlow do), so that
        one chunk's array work runs while another's network does. Each chunk's
        rates are the same whatever ``workers``.
        """
        from tqdm.auto import tqdm

        X = _as_trace_array(X)
        warn_implausible(X, self._fs())
        n_traces, n_frames = X.shape
        step = max(PREDICT_CHUNK_FRAMES // n_frames, 1)
        out = _check_out(out, X.shape)
        firsts = range(0, n_traces, step)
        if len(firsts) > 1:
            _bound_heap_growth()  # memory bounded over many chunks, not only per chunk

        def run(first):
            chunk = check_traces(X[first : first + step], first=first, dtype=dtype)
            n = len(chunk)
            if fill:
                predict_chunk(chunk, first, out=out[first : first + n])
            else:
                out[first : first + n] = predict_chunk(chunk, first)
            return n

        def done(n):
            # pages of a float32 map are copied; a float64 one re-reads
            _drop_pages(X)
            _drop_pages(out)
            bar.update(n)

        workers = max(min(int(workers), len(firsts)), 1)
        with tqdm(total=n_traces, disable=not progress, desc="predict", unit="neuron") as bar:
            if workers == 1:
                for first in firsts:
                    done(run(first))
                return out
            from collections import deque
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(workers, thread_name_prefix="calgan-predict") as pool:
                pending = deque()
                try:
                    for first in firsts:
                        if len(pending) == workers:  # bounded: `workers` chunks in memory
                            done(pending.popleft().result())
                        pending.append(pool.submit(run, first))
                    while pending:
                        done(pending.popleft().result())
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
        return out
