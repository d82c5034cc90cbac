"""Load any mix of SpikeFinder-layout, CASCADE and imaging-pipeline data into one Bunch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_fs
from ..signal import pad_traces
from ._formats import recording_format

__all__ = ["concat_bunches", "detect_layout", "load_folder"]

_SF_PATTERN = re.compile(r"^([^.]+)\.([^.]+)\.calcium\.csv$")
#: Layouts of recordings without spikes, read by :func:`~calgan_sklearn.datasets.load_recording`.
RECORDING_LAYOUTS = ("suite2p", "caiman", "nwb", "npy")


def detect_layout(path):
    """Say which kind of data ``path`` holds.

    Parameters
    ----------
    path : str or Path
        A folder of ``N.<split>.calcium.csv`` files, a CASCADE dataset folder
        (``*.mat``), a folder of CASCADE dataset folders, or one such file; or
        a recording: a suite2p plane folder (or a folder holding ``plane0/``),
        CaImAn ``.hdf5`` results, an ``.nwb`` file or a ``.npy`` array.

    Returns
    -------
    layout : {"spikefinder", "cascade", "suite2p", "caiman", "nwb", "npy"}
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist; pass a SpikeFinder or CASCADE data folder.")
    if recording_format(path) in RECORDING_LAYOUTS:
        return recording_format(path)
    if path.is_file():
        if path.suffix == ".mat":
            return "cascade"
        if _SF_PATTERN.match(path.name):
            return "spikefinder"
        raise ValueError(
            f"{path} is neither a SpikeFinder 'N.<split>.calcium.csv' file, a CASCADE "
            "'.mat' file, CaImAn '.hdf5' results, an '.nwb' file nor a '.npy' array."
        )
    if any(_SF_PATTERN.match(p.name) for p in path.iterdir()):
        return "spikefinder"
    if any(path.glob("*.mat")) or any(path.glob("*/*.mat")):
        return "cascade"
    listing = sorted(p.name for p in path.iterdir())[:10]
    raise ValueError(
        f"{path} holds no SpikeFinder files ('N.<split>.calcium.csv'), no CASCADE '.mat' "
        f"files and no suite2p F.npy (found: {listing}); point it at a folder of one kind."
    )


def concat_bunches(bunches):
    """Stack several loader Bunches (same ``fs``) into one, NaN-padding to the longest."""
    bunches = list(bunches)
    if not bunches:
        raise ValueError("no data to concatenate.")
    rates = {float(b.fs) for b in bunches}
    if len(rates) > 1:
        raise ValueError(
            f"cannot stack data recorded at different rates {sorted(rates)} Hz; "
            "load them with a common fs."
        )
    labelled = all(b.spikes is not None for b in bunches)
    out = Bunch(
        calcium=pad_traces([row for b in bunches for row in b.calcium]),
        spikes=pad_traces([row for b in bunches for row in b.spikes]) if labelled else None,
        fs=rates.pop(),
        DESCR="\n\n".join(str(b.get("DESCR", "")) for b in bunches),
    )
    for key in ("dataset", "neuron", "indicator"):
        out[key] = np.concatenate([np.asarray(b[key], dtype=str) for b in bunches])
    if all("units" in b for b in bunches):
        out["units"] = np.concatenate([np.asarray(b["units"], dtype=str) for b in bunches])
    return out


def load_folder(paths, fs=100.0, split="train"):
    """Load SpikeFinder, CASCADE and recording folders or files into one Bunch.

    Parameters
    ----------
    paths : str, Path or list of them
        Folders (or files) in any layout :func:`detect_layout` knows.
        Recordings (suite2p, CaImAn, NWB, ``.npy``) have no spikes, so
        ``spikes`` is None if any is given.
    fs : float, default=100.0
        Common frame rate in Hz. CASCADE data and recordings are resampled to
        it (spike counts preserved); SpikeFinder data (100 Hz) is resampled if
        ``fs`` differs. A ``.npy`` array is taken as recorded at ``fs``.
    split : str, default="train"
        SpikeFinder file split to read (``"train"`` or ``"test"``).

    Returns
    -------
    data : Bunch
        Same fields as :func:`load_spikefinder`.
    """
    from ..signal import resample_traces
    from . import load_cascade, load_recording, load_spikefinder

    fs = check_fs(fs)
    if isinstance(paths, (str, Path)):
        paths = [paths]
    bunches = []
    for path in paths:
        layout = detect_layout(path)
        if layout == "cascade":
            bunches.append(load_cascade(path, fs=fs))
            continue
        path = Path(path)
        if layout in RECORDING_LAYOUTS:
            b = load_recording(path, fs=fs if layout == "npy" else None)
        elif path.is_file():
            b = load_spikefinder(
                path.parent, split=split, datasets=[_SF_PATTERN.match(path.name).group(1)]
            )
        else:
            b = load_spikefinder(path, split=split)
        if not np.isclose(b.fs, fs):
            b.calcium = resample_traces(b.calcium, b.fs, fs)
            if b.spikes is not None:
                b.spikes = resample_traces(b.spikes, b.fs, fs, kind="counts")
            b.fs = fs
        bunches.append(b)
    return concat_bunches(bunches)
