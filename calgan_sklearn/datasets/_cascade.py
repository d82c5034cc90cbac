"""CASCADE ground-truth ``.mat`` files (Rupprecht et al. 2021, Nat Neurosci)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy.io import loadmat
from sklearn.utils import Bunch

from .._validation import check_fs
from ..signal import bin_spike_times, pad_traces, resample_calcium
from ._labels import indicator_from_label

__all__ = ["load_cascade"]

_FIELDS = ("fluo_time", "fluo_mean", "events_AP")
_RATE_RTOL = 0.02
#: Below this frame rate (Hz) the frame times are most likely not in seconds.
_MIN_PLAUSIBLE_FS = 1.0

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


def _field(trial, name):
    """A trial's field as a flat float array, or None if absent or empty."""
    names = trial.dtype.names or ()
    if name not in names:
        return None
    value = np.asarray(trial[name])
    if value.dtype == object:  # struct fields come wrapped in 1x1 object arrays
        value = (
            value.ravel()[0]
            if value.size == 1
            else np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in value.ravel()])
        )
    return np.asarray(value, dtype=np.float64).ravel()


def _read_trials(filename):
    """(frame_times_s, dff, spike_times_s, notes) of each usable trial of one file.

    Quirks of real ground-truth files are handled as CASCADE's own reader does:
    trials without fluorescence (or without spike times) are skipped,
    ``fluo_mean`` longer than ``fluo_time`` is cut to the frames that have
    times, and repeated frame times are dropped (the first frame is kept).
    Each skip or repair is reported by a warning naming the file and trial.
    """
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
        where = f"{filename}, trial {k}"
        names = getattr(getattr(trial, "dtype", None), "names", None) or ()
        if not names:
            raise ValueError(
                f"{where} is not a struct; expected CAttached trials with fields {list(_FIELDS)}."
            )
        try:
            times, dff, events = (_field(trial, f) for f in _FIELDS)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: non-numeric {list(_FIELDS)}: {exc}") from exc
        if dff is None or dff.size == 0 or times is None or times.size == 0:
            _warn(f"skipped {where}: no fluorescence (fluo_time or fluo_mean is empty).")
            continue
        if events is None:
            _warn(f"skipped {where}: no events_AP field, so no ground-truth spikes.")
            continue
        notes = []
        if dff.size > times.size:
            notes.append(
                f"fluo_mean has {dff.size} samples but fluo_time only {times.size}; "
                f"kept the first {times.size} (the ones with frame times)"
            )
            dff = dff[: times.size]
        elif dff.size < times.size:
            _warn(
                f"skipped {where}: fluo_time has {times.size} frames but fluo_mean only "
                f"{dff.size}; which frames the values belong to is unknown."
            )
            continue
        out.append((k, times, dff, events / 1e4, notes))
    return out


def _warn(message):
    warnings.warn(message, UserWarning, stacklevel=4)


def _repair_times(times, dff, where, notes):
    """Drop repeated frame times; None (and a warning) if the times go backwards."""
    step = np.diff(times)
    if np.any(step < 0):
        _warn(
            f"skipped {where}: fluo_time goes backwards ({int((step < 0).sum())} times); "
            "expected increasing frame times in seconds."
        )
        return None
    repeated = np.concatenate([[False], step == 0])
    if repeated.any():
        notes.append(f"dropped {int(repeated.sum())} frame(s) whose time repeats the previous")
        times, dff = times[~repeated], dff[~repeated]
    return times, dff


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
        Naming the file and trial, for every trial skipped (no fluorescence, no
        spike times, fewer than 2 frames, times that go backwards) or repaired
        (``fluo_mean`` longer than ``fluo_time`` cut to the timed frames,
        repeated frame times, NaN frames or spike times dropped), and for frame
        times that imply less than 1 Hz (times not in seconds); once per call
        for spikes outside the recording.

    Examples
    --------
    A dataset folder with one file of one 10-s trial at 60 Hz and two spikes
    (CASCADE stores spike times in units of 0.1 ms):

    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from scipy.io import savemat
    >>> from calgan_sklearn.datasets import load_cascade
    >>> folder = Path(tempfile.mkdtemp()) / "DS09-GCaMP6f-m-V1"
    >>> folder.mkdir()
    >>> trial = {"fluo_time": np.arange(600) / 60.0, "fluo_mean": np.zeros(600),
    ...          "events_AP": np.array([2.0e4, 5.0e4])}
    >>> savemat(folder / "CAttached_cell1_mini.mat", {"CAttached": [trial]})
    >>> data = load_cascade(folder, fs=30.0)
    >>> data.calcium.shape, str(data.indicator[0]), float(np.nansum(data.spikes))
    ((1, 300), 'GCaMP6f', 2.0)
    """
    files = _find_files(path)
    if fs is not None:
        fs = check_fs(fs)
    records = []
    outside = 0
    for filename in files:
        dataset = filename.parent.name
        neuron = f"{dataset}/{filename.stem.removesuffix('_mini')}"
        for k, times, dff, events, notes in _read_trials(filename):
            where = f"{filename}, trial {k}"
            valid = np.isfinite(times) & np.isfinite(dff)
            if not valid.all():
                notes.append(f"dropped {int((~valid).sum())} frame(s) with NaN time or dF/F")
            if np.isnan(events).any():
                notes.append(f"dropped {int(np.isnan(events).sum())} NaN spike time(s)")
            times, dff = times[valid], dff[valid]
            if times.size < 2:
                _warn(f"skipped {where}: fewer than 2 valid frames.")
                continue
            repaired = _repair_times(times, dff, where, notes)
            if repaired is None:
                continue
            times, dff = repaired
            if times.size < 2:
                _warn(f"skipped {where}: fewer than 2 valid frames.")
                continue
            if notes:
                _warn(f"repaired {where}: " + "; ".join(notes) + ".")
            rate = _native_rate(times)
            if rate < _MIN_PLAUSIBLE_FS:
                _warn(
                    f"{where}: frame times imply {rate:.3g} Hz; fluo_time must be in "
                    "seconds (are they in milliseconds?)."
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
                    fs_native=rate,
                )
            )
    if not records:
        raise ValueError(
            f"no usable trials in {path}: every trial was skipped (the warnings say why)."
        )
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
    if outside:
        warnings.warn(
            f"dropped {outside} spikes outside the recording while loading {path}.",
            UserWarning,
            stacklevel=2,
        )

    datasets = np.asarray([r["dataset"] for r in records], dtype=str)
    return Bunch(
        calcium=pad_traces(calcium),
        spikes=pad_traces(spikes),
        fs=fs_out,
        dataset=datasets,
        neuron=np.asarray([r["neuron"] for r in records], dtype=str),
        indicator=np.asarray([indicator_from_label(d) for d in datasets], dtype=str),
        trial=np.asarray([r["trial"] for r in records]),
        filename=np.asarray([r["filename"] for r in records], dtype=str),
        fs_native=rates,
        units=np.full(len(records), "dff"),
        DESCR=_DESCR,
    )
