"""CASCADE ground-truth ``.mat`` files (Rupprecht et al. 2021, Nat Neurosci)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from sklearn.utils import Bunch

from .._validation import check_fs
from ._labels import indicator_from_label, stack_padded
from ._resample import bin_spike_times, resample_calcium

__all__ = ["load_cascade"]

_FIELDS = ("fluo_time", "fluo_mean", "events_AP")
_RATE_RTOL = 0.02

_DESCR = """CASCADE ground-truth database (Rupprecht et al. 2021, Nat Neurosci).

dF/F traces of neurons imaged with a calcium indicator while their spikes were
recorded juxtacellularly or in cell-attached mode. One trace per continuous
recording (trial); spikes are counts per frame binned from the recorded spike
times. Traces are NaN-padded at the end.
"""


def _find_files(path):
    path = Path(path)
    if path.is_file():
        if path.suffix != ".mat":
            raise ValueError(f"{path} is not a .mat file; expected a CASCADE ground-truth file.")
        return [path]
    if not path.is_dir():
        raise ValueError(f"{path} does not exist; expected a .mat file or a folder of them.")
    files = sorted(path.glob("*.mat"))
    if not files:
        files = sorted(path.glob("*/*.mat"))
    if not files:
        raise ValueError(
            f"no .mat files in {path} or its subfolders; expected CASCADE ground truth "
            "(DSxx-<indicator>-.../CAttached_*.mat)."
        )
    return files


def _read_trials(filename):
    """Yield (frame_times_s, dff, spike_times_s) for each trial of one file."""
    try:
        mat = loadmat(filename, variable_names=["CAttached"])
    except Exception as exc:  # scipy raises several types for corrupt files
        raise ValueError(f"{filename} could not be read as a MATLAB file: {exc}") from exc
    if "CAttached" not in mat:
        raise ValueError(
            f"{filename} has no 'CAttached' variable; expected CASCADE ground truth "
            "with CAttached trials holding fluo_time, fluo_mean and events_AP."
        )
    trials = np.asarray(mat["CAttached"]).ravel()
    if trials.dtype == object:
        trials = [np.asarray(t).ravel()[0] for t in trials]
    out = []
    for k, trial in enumerate(trials):
        names = trial.dtype.names or ()
        absent = [f for f in _FIELDS if f not in names]
        if absent:
            raise ValueError(
                f"{filename}, trial {k} lacks field(s) {absent}; expected "
                f"{list(_FIELDS)} (has {list(names)})."
            )
        try:
            times, dff, events = (np.asarray(trial[f], dtype=np.float64).ravel() for f in _FIELDS)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{filename}, trial {k}: non-numeric {list(_FIELDS)}: {exc}") from exc
        if times.shape != dff.shape:
            raise ValueError(
                f"{filename}, trial {k}: fluo_time has {times.size} frames but fluo_mean has "
                f"{dff.size}; both must cover the same frames."
            )
        out.append((times, dff, events / 1e4))
    return out


def _native_rate(times):
    return 1.0 / np.median(np.diff(times))


def _regular_grid_values(times, dff, fs_native):
    """Values on the regular native grid ``t0 + k / fs_native`` (fills dropped frames)."""
    n = int(np.floor((times[-1] - times[0]) * fs_native + 0.5)) + 1
    grid = times[0] + np.arange(n) / fs_native
    return np.interp(grid, times, dff)


def load_cascade(path, fs=None):
    """Load CASCADE ground-truth recordings (dF/F with simultaneously recorded spikes).

    Each trial of each file ``CAttached_*.mat`` becomes one trace. The indicator
    is parsed from the folder name (``DSxx-<indicator>-...``).

    Parameters
    ----------
    path : str or path-like
        One ``.mat`` file, a dataset folder of them, or a folder of dataset folders.
    fs : float, default=None
        Frame rate in Hz of the returned traces. ``None`` keeps the native rate,
        which must agree within 2% between all files. Otherwise the
        fluorescence is resampled (anti-aliased, see :func:`resample_calcium`)
        onto frames ``t0 + k / fs`` and the spikes are binned on that grid, so
        every spike within the recording is counted exactly once.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``calcium`` (dF/F) and ``spikes`` (counts per frame), ndarrays of shape
        (n_traces, n_frames), NaN-padded; ``fs`` (float); per-trace ``dataset``
        (folder name), ``neuron`` (``"<folder>/<file stem without _mini>"``),
        ``indicator``, ``trial``, ``filename`` and ``fs_native``; ``DESCR``.

    Raises
    ------
    ValueError
        If files are missing or lack the expected fields, or if ``fs=None`` and
        the native frame rates differ (the message lists them).

    Warns
    -----
    UserWarning
        When frames with NaN time stamps or fluorescence, NaN spike times or
        spikes outside the recording are dropped (with their counts).

    Examples
    --------
    >>> from calgan_sklearn.datasets import load_cascade
    >>> data = load_cascade("../shared/data/cascade/DS09-GCaMP6f-m-V1",
    ...                     fs=30.0)  # doctest: +SKIP
    >>> data.calcium.shape, data.indicator[0]  # doctest: +SKIP
    ((20, 14400), 'GCaMP6f')
    """
    files = _find_files(path)
    if fs is not None:
        fs = check_fs(fs)
    records = []
    dropped = {"frames with NaN time or dF/F": 0, "NaN spike times": 0}
    outside = 0
    for filename in files:
        dataset = filename.parent.name
        neuron = f"{dataset}/{filename.stem.removesuffix('_mini')}"
        for k, (times, dff, events) in enumerate(_read_trials(filename)):
            valid = np.isfinite(times) & np.isfinite(dff)
            dropped["frames with NaN time or dF/F"] += int((~valid).sum())
            dropped["NaN spike times"] += int(np.isnan(events).sum())
            times, dff = times[valid], dff[valid]
            if times.size < 2:
                warnings.warn(
                    f"dropped {filename}, trial {k}: fewer than 2 valid frames.",
                    UserWarning,
                    stacklevel=2,
                )
                continue
            if np.any(np.diff(times) <= 0):
                raise ValueError(
                    f"{filename}, trial {k}: fluo_time is not strictly increasing; "
                    "expected frame times in seconds."
                )
            records.append(
                dict(
                    dataset=dataset,
                    neuron=neuron,
                    trial=k,
                    filename=str(filename),
                    times=times,
                    dff=dff,
                    events=events[np.isfinite(events)],
                    fs_native=_native_rate(times),
                )
            )
    if not records:
        raise ValueError(f"no usable trials in {path}.")
    rates = np.array([r["fs_native"] for r in records])
    if fs is None:
        if rates.max() > rates.min() * (1 + _RATE_RTOL):
            by_set = {}
            for r in records:
                by_set.setdefault(r["dataset"], set()).add(f"{r['fs_native']:.1f}")
            listing = "; ".join(f"{d}: {', '.join(sorted(v))} Hz" for d, v in by_set.items())
            raise ValueError(
                f"frame rates differ between files ({listing}); pass fs=<rate in Hz> to "
                "resample every trace to one frame rate."
            )
        fs_out = float(np.mean(rates))
    else:
        fs_out = fs

    calcium, spikes = [], []
    for r in records:
        if fs is None:
            values, frame_times = r["dff"], r["times"]
        else:
            regular = _regular_grid_values(r["times"], r["dff"], r["fs_native"])
            values = resample_calcium(regular, r["fs_native"], fs_out)
            frame_times = r["times"][0] + np.arange(len(values)) / fs_out
        counts, n_out = bin_spike_times(r["events"], frame_times)
        outside += n_out
        calcium.append(values)
        spikes.append(counts)
    dropped["spikes outside the recording"] = outside
    for what, n in dropped.items():
        if n:
            warnings.warn(f"dropped {n} {what} while loading {path}.", UserWarning, stacklevel=2)

    datasets = np.asarray([r["dataset"] for r in records], dtype=str)
    return Bunch(
        calcium=stack_padded(calcium),
        spikes=stack_padded(spikes),
        fs=fs_out,
        dataset=datasets,
        neuron=np.asarray([r["neuron"] for r in records], dtype=str),
        indicator=np.asarray([indicator_from_label(d) for d in datasets], dtype=str),
        trial=np.asarray([r["trial"] for r in records]),
        filename=np.asarray([r["filename"] for r in records], dtype=str),
        fs_native=rates,
        DESCR=_DESCR,
    )
