"""SpikeFinder CSV files: ``N.<split>.calcium.csv`` and ``N.<split>.spikes.csv``."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..signal import pad_traces, trace_lengths, unpad_traces
from ._csv import _check_new_files, _write_csv, read_traces_csv
from ._labels import indicator_from_label

__all__ = ["load_spikefinder", "write_spikefinder"]

SPIKEFINDER_FS = 100.0

_DESCR = """SpikeFinder challenge data (Berens et al. 2018, PLoS Comput Biol).

Calcium traces resampled to 100 Hz (linearly detrended; not in dF/F units, the
scale differs between datasets) with simultaneously recorded spike counts per
10 ms frame. One trace per CSV column; traces are NaN-padded at the end.
"""


def _split_pattern(split):
    return re.compile(rf"^([^.]+)\.{re.escape(split)}\.calcium\.csv$")


def _sort_key(label):
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def _available(path, split):
    pattern = _split_pattern(split)
    found = [m.group(1) for f in path.iterdir() if (m := pattern.match(f.name))]
    return sorted(found, key=_sort_key)


def _load_one(path, label, split, require_spikes):
    cfile = path / f"{label}.{split}.calcium.csv"
    sfile = path / f"{label}.{split}.spikes.csv"
    cX, columns = read_traces_csv(cfile, "calcium")
    calcium = unpad_traces(cX)
    spikes = None
    if sfile.exists():
        sX, scolumns = read_traces_csv(sfile, "spikes")
        if scolumns != columns:
            raise ValueError(
                f"{cfile} has columns {columns} but {sfile} has "
                f"{scolumns}; both must list the same neurons."
            )
        spikes = unpad_traces(sX)
        for col, c, s in zip(columns, calcium, spikes):
            if len(c) != len(s):
                raise ValueError(
                    f"{cfile}, column {col!r} has {len(c)} samples but {sfile}, column "
                    f"{col!r} has {len(s)}; both must cover the same frames."
                )
    elif require_spikes:
        raise ValueError(
            f"{cfile} has no spikes file {sfile.name} next to it; spikes are required "
            "(require_spikes=True). Pass require_spikes=False to load unlabeled data."
        )
    empty = [col for col, c in zip(columns, calcium) if len(c) == 0]
    if empty:
        warnings.warn(
            f"dropped {len(empty)} all-NaN column(s) {empty} of {cfile}: no samples.",
            UserWarning,
            stacklevel=3,
        )
    keep = [i for i, c in enumerate(calcium) if len(c)]
    return (
        [columns[i] for i in keep],
        [calcium[i] for i in keep],
        None if spikes is None else [spikes[i] for i in keep],
        cfile.name,
    )


def _warn_orphan_spikes(path, split, available):
    """Warn about spikes files whose calcium file is missing (nothing is ignored silently)."""
    pattern = re.compile(rf"^([^.]+)\.{re.escape(split)}\.spikes\.csv$")
    orphans = sorted(
        f.name
        for f in path.iterdir()
        if (m := pattern.match(f.name)) and m.group(1) not in available
    )
    if orphans:
        warnings.warn(
            f"ignored {orphans} in {path}: no calcium file with the same dataset number "
            f"(expected e.g. {orphans[0].replace('.spikes.', '.calcium.')}).",
            UserWarning,
            stacklevel=3,
        )


def _normalize_datasets(datasets):
    if datasets is None:
        return None
    if isinstance(datasets, (str, int, np.integer)):
        datasets = [datasets]
    return [str(d) for d in datasets]


def load_spikefinder(path, split="train", datasets=None, *, as_frame=False, require_spikes=False):
    """Load SpikeFinder CSV files from a folder.

    Reads ``N.<split>.calcium.csv`` and, where present, ``N.<split>.spikes.csv``
    for every dataset ``N`` (header ``0,1,2,...``: one column per neuron, one
    row per 10 ms sample, NaN padding at the end). Datasets of different lengths
    are stacked with NaN padding to the longest trace.

    Parameters
    ----------
    path : str or path-like
        Folder holding the CSV files.
    split : str, default="train"
        Middle part of the file names, e.g. ``"train"`` or ``"test"``.
    datasets : int, str or list of those, default=None
        Dataset numbers to load; ``None`` loads every dataset of ``split``.
    as_frame : bool, default=False
        Also return a tidy :class:`pandas.DataFrame` (one row per sample, columns
        ``dataset, neuron, indicator, frame, time, calcium, spikes``) as
        ``frame``.
    require_spikes : bool, default=False
        Raise if a calcium file has no spikes file. When ``False``, unlabeled
        datasets load with ``spikes=None`` (or all-NaN rows, with a warning,
        when mixed with labeled ones).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``calcium`` and ``spikes`` (ndarray of shape (n_traces, n_frames),
        NaN-padded; ``spikes`` is None for unlabeled data), ``fs`` (100.0),
        per-trace ``dataset``, ``neuron`` (``"N/column"``), ``indicator``,
        ``column`` and ``filename`` (ndarray of str), ``DESCR`` and, with
        ``as_frame=True``, ``frame``.

    Raises
    ------
    ValueError
        If a requested dataset is missing (the message lists those present) or a
        file is malformed (the message names the file and column).

    Notes
    -----
    Columns that hold no value at all are dropped with a warning naming them.

    Examples
    --------
    >>> import tempfile
    >>> from calgan_sklearn.datasets import load_spikefinder, make_calcium, write_spikefinder
    >>> sim = make_calcium(n_neurons=2, duration=5.0, random_state=0)
    >>> folder = tempfile.mkdtemp()
    >>> write_spikefinder(sim, folder, dataset=7)
    >>> data = load_spikefinder(folder, datasets=7)
    >>> data.calcium.shape, str(data.indicator[0]), data.neuron.tolist()
    ((2, 500), 'GCaMP6f', ['7/0', '7/1'])
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"path {str(path)!r} is not a folder; expected a SpikeFinder folder.")
    available = _available(path, split)
    wanted = _normalize_datasets(datasets)
    if wanted is None:
        if not available:
            names = sorted(f.name for f in path.iterdir())[:20]
            raise ValueError(
                f"no '*.{split}.calcium.csv' files in {path}; found {names}. "
                "Check path and split (e.g. 'train' or 'test')."
            )
        wanted = available
    missing = [d for d in wanted if d not in available]
    if missing:
        raise ValueError(
            f"dataset(s) {missing} not found in {path} for split {split!r} "
            f"(no {missing[0]}.{split}.calcium.csv); datasets present: {available}."
        )

    calcium, spikes, labels, columns, files, unlabeled = [], [], [], [], [], []
    for label in wanted:
        cols, cal, spk, fname = _load_one(path, label, split, require_spikes)
        calcium += cal
        spikes += [np.full(len(c), np.nan) for c in cal] if spk is None else spk
        if spk is None:
            unlabeled.append(label)
        labels += [label] * len(cols)
        columns += cols
        files += [fname] * len(cols)
    if not calcium:
        raise ValueError(f"no traces with samples in datasets {wanted} of {path}.")
    if unlabeled and len(unlabeled) < len(wanted):
        warnings.warn(
            f"dataset(s) {unlabeled} have no spikes file; their spikes rows are all NaN.",
            UserWarning,
            stacklevel=2,
        )
    elif unlabeled and split != "test":
        warnings.warn(
            f"no spikes file for dataset(s) {unlabeled} of split {split!r} in {path} "
            f"(e.g. {unlabeled[0]}.{split}.spikes.csv); loaded without spikes "
            "(spikes=None). Pass require_spikes=True to make this an error.",
            UserWarning,
            stacklevel=2,
        )
    _warn_orphan_spikes(path, split, available)
    labels = np.asarray(labels, dtype=str)
    columns = np.asarray(columns, dtype=str)
    bunch = Bunch(
        calcium=pad_traces(calcium),
        spikes=None if len(unlabeled) == len(wanted) else pad_traces(spikes),
        fs=SPIKEFINDER_FS,
        dataset=labels,
        neuron=np.char.add(np.char.add(labels, "/"), columns),
        indicator=np.asarray([indicator_from_label(d) for d in labels], dtype=str),
        column=columns,
        filename=np.asarray(files, dtype=str),
        units=np.full(len(labels), "arbitrary"),
        DESCR=_DESCR,
    )
    if as_frame:
        bunch.frame = traces_to_frame(bunch)
    return bunch


def traces_to_frame(bunch):
    """Tidy DataFrame of a loader's Bunch: one row per non-padded frame of each trace."""
    lengths = trace_lengths(bunch.calcium)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    frame = np.concatenate([np.arange(n) for n in lengths])
    mask = np.arange(bunch.calcium.shape[1])[None, :] < lengths[:, None]
    return pd.DataFrame(
        {
            "dataset": bunch.dataset[rows],
            "neuron": bunch.neuron[rows],
            "indicator": bunch.indicator[rows],
            "frame": frame,
            "time": frame / bunch.fs,
            "calcium": bunch.calcium[mask],
            "spikes": np.nan if bunch.spikes is None else bunch.spikes[mask],
        }
    )


def _unpack(data, dataset):
    if isinstance(data, (Bunch, dict)):
        calcium, spikes = data["calcium"], data.get("spikes")
        labels = data.get("dataset") if dataset is None else dataset
    elif isinstance(data, tuple):
        if len(data) != 2:
            raise ValueError(
                f"data as a tuple must be (calcium, spikes), got {len(data)} elements."
            )
        (calcium, spikes), labels = data, dataset
    else:
        calcium, spikes, labels = data, None, dataset
    calcium = np.asarray(calcium, dtype=np.float64)
    if calcium.ndim == 1:
        calcium = calcium[np.newaxis]
    if spikes is not None:
        spikes = np.asarray(spikes, dtype=np.float64).reshape(calcium.shape[0], -1)
        if spikes.shape != calcium.shape:
            raise ValueError(
                f"calcium has shape {calcium.shape} but spikes has shape {spikes.shape}; "
                "both must be (n_traces, n_frames)."
            )
    if labels is None:
        raise ValueError(
            "no dataset labels: pass a Bunch with a 'dataset' entry or dataset=<number> "
            "(one label for all traces, or one per trace)."
        )
    labels = np.asarray(labels, dtype=str)
    if labels.ndim == 0:
        labels = np.full(calcium.shape[0], labels.item())
    if labels.shape != (calcium.shape[0],):
        raise ValueError(
            f"dataset labels have shape {labels.shape}; expected one per trace "
            f"({calcium.shape[0]},) or a single label."
        )
    bad = sorted({d for d in labels if not d or re.search(r"[./\\\s]", d)})
    if bad:
        raise ValueError(
            f"dataset labels {bad} cannot be file names 'N.<split>.calcium.csv'; use "
            "labels without '.', '/', '\\' or spaces, e.g. dataset numbers."
        )
    return calcium, spikes, labels


def _frame_for(rows, lengths, columns):
    width = int(lengths.max())
    return pd.DataFrame({c: r[:width] for c, r in zip(columns, rows)})


def write_spikefinder(data, path, split="train", *, dataset=None, overwrite=False):
    """Write traces as SpikeFinder CSV files, one file pair per dataset label.

    Parameters
    ----------
    data : Bunch, tuple (calcium, spikes) or array-like of shape (n_traces, n_frames)
        Traces to write, e.g. what :func:`load_spikefinder` or
        :func:`make_calcium` returns. Spikes, where given, go to
        ``N.<split>.spikes.csv`` (as integers when all counts are integral).
    path : str or path-like
        Folder to write into; created if missing.
    split : str, default="train"
        Middle part of the file names.
    dataset : str, int or array-like of shape (n_traces,), default=None
        Dataset label(s); overrides ``data.dataset``. Labels become file-name
        prefixes and must not hold ``'.'``, ``'/'`` or spaces.
    overwrite : bool, default=False
        Replace existing files instead of raising :class:`FileExistsError`.

    Returns
    -------
    None

    Notes
    -----
    Floats are written with the shortest representation that reads back to the
    same float64, so ``load_spikefinder`` after ``write_spikefinder`` is lossless.
    Traces of a dataset become columns ``0, 1, ...`` in order: per-trace labels
    other than the dataset (neuron, trial) are not stored.

    Examples
    --------
    >>> import tempfile, os
    >>> from calgan_sklearn.datasets import make_calcium, write_spikefinder
    >>> folder = tempfile.mkdtemp()
    >>> write_spikefinder(make_calcium(n_neurons=2, duration=2.0, random_state=0), folder)
    >>> sorted(os.listdir(folder))
    ['sim-GCaMP6s.train.calcium.csv', 'sim-GCaMP6s.train.spikes.csv']
    """
    calcium, spikes, labels = _unpack(data, dataset)
    if "." in split or "/" in split or not split:
        raise ValueError(f"split must be a plain word such as 'train', got {split!r}.")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    order = list(dict.fromkeys(labels.tolist()))
    jobs = []
    for label in order:
        idx = np.flatnonzero(labels == label)
        lengths = trace_lengths(calcium[idx])
        columns = [str(i) for i in range(len(idx))]
        cframe = _frame_for(calcium[idx], lengths, columns)
        jobs.append((path / f"{label}.{split}.calcium.csv", cframe))
        if spikes is not None and np.isfinite(spikes[idx]).any():
            s = spikes[idx]
            sframe = _frame_for(s, lengths, columns)
            finite = s[np.isfinite(s)]
            if np.all(finite == np.round(finite)):
                sframe = sframe.astype("Int64")
            jobs.append((path / f"{label}.{split}.spikes.csv", sframe))
    _check_new_files([f for f, _ in jobs], overwrite)
    for filename, frame in jobs:
        _write_csv(frame, filename)
