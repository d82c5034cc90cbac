"""Load any mix of SpikeFinder-layout and CASCADE folders into one Bunch."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_fs
from ..signal import pad_traces

__all__ = [
    "dataset_weights",
    "detect_layout",
    "load_folder",
    "concat_bunches",
    "read_calcium_csv",
    "write_rates_csv",
]

_SF_PATTERN = re.compile(r"^([^.]+)\.([^.]+)\.calcium\.csv$")


def detect_layout(path):
    """Say whether ``path`` holds SpikeFinder CSVs or CASCADE ``.mat`` files.

    Parameters
    ----------
    path : str or Path
        A folder of ``N.<split>.calcium.csv`` files, a CASCADE dataset folder
        (``*.mat``), a folder of CASCADE dataset folders, or one such file.

    Returns
    -------
    layout : {"spikefinder", "cascade"}
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist; pass a SpikeFinder or CASCADE data folder.")
    if path.is_file():
        if path.suffix == ".mat":
            return "cascade"
        if _SF_PATTERN.match(path.name):
            return "spikefinder"
        raise ValueError(
            f"{path} is neither a SpikeFinder 'N.<split>.calcium.csv' file nor a CASCADE "
            "'.mat' file."
        )
    if any(_SF_PATTERN.match(p.name) for p in path.iterdir()):
        return "spikefinder"
    if any(path.glob("*.mat")) or any(path.glob("*/*.mat")):
        return "cascade"
    listing = sorted(p.name for p in path.iterdir())[:10]
    raise ValueError(
        f"{path} holds no SpikeFinder files ('N.<split>.calcium.csv') and no CASCADE '.mat' "
        f"files (found: {listing}); point it at a folder of either kind."
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
    """Load SpikeFinder and/or CASCADE folders into one Bunch at a common rate.

    Parameters
    ----------
    paths : str, Path or list of them
        Folders (or files) in either layout; each is detected with
        :func:`detect_layout`.
    fs : float, default=100.0
        Common frame rate in Hz. CASCADE data is resampled to it (spike counts
        preserved); SpikeFinder data (100 Hz) is resampled if ``fs`` differs.
    split : str, default="train"
        SpikeFinder file split to read (``"train"`` or ``"test"``).

    Returns
    -------
    data : Bunch
        Same fields as :func:`load_spikefinder`.
    """
    from ..signal import resample_traces
    from . import load_cascade, load_spikefinder

    fs = check_fs(fs)
    if isinstance(paths, (str, Path)):
        paths = [paths]
    bunches = []
    for path in paths:
        if detect_layout(path) == "cascade":
            bunches.append(load_cascade(path, fs=fs))
            continue
        path = Path(path)
        if path.is_file():
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


def read_calcium_csv(path):
    """Read one SpikeFinder-layout CSV (one column per neuron) into traces.

    The same strict reader as :func:`load_spikefinder`
    (:func:`~calgan_sklearn.datasets.read_traces_csv`): a malformed file
    raises a ``ValueError`` naming the file, column and row.

    Parameters
    ----------
    path : str or Path
        A CSV with a header row of column names and one row per frame; shorter
        traces are padded at the end with empty fields.

    Returns
    -------
    calcium : ndarray of shape (n_traces, n_frames)
        The columns as rows, NaN-padded; a column without any value is an
        all-NaN row.
    columns : list of str
        The header, to write results back in the same layout.
    """
    from ._spikefinder import read_traces_csv

    return read_traces_csv(path, "calcium")


def write_rates_csv(rates, columns, path, *, overwrite=False):
    """Write rates ``(n_traces, n_frames)`` as a SpikeFinder-layout CSV.

    Columns are the given header; NaN padding is written as empty fields, so
    the file lines up frame by frame with the calcium file it came from. The
    file is written next to its destination first and then moved into place,
    so an interrupted write never leaves a half-written file.

    Parameters
    ----------
    rates : array-like of shape (n_traces, n_frames)
    columns : list of str
        One name per trace.
    path : str or Path
        File to write; its folder is created if missing.
    overwrite : bool, default=False
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    path : Path
    """
    import pandas as pd

    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 2 or rates.shape[0] != len(columns):
        raise ValueError(
            f"rates has shape {rates.shape} but {len(columns)} column names were given; "
            "expected one trace per column."
        )
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name for the rates CSV.")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (calgan: --overwrite) or choose "
            "another file name."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    pd.DataFrame(rates.T, columns=list(columns)).to_csv(
        tmp, index=False, float_format="%.9g", na_rep=""
    )
    tmp.replace(path)
    return path


def dataset_weights(calcium, groups):
    """Per-trace weights that give every dataset the same share of training.

    Each trace gets ``1 / (frames of its dataset)``, so long datasets do not
    dominate a model trained on several (pass as ``sample_weight``).

    Parameters
    ----------
    calcium : array-like of shape (n_traces, n_frames)
        Traces, NaN-padded at the end.
    groups : array-like of shape (n_traces,)
        Dataset label of each trace (e.g. a loader Bunch's ``dataset``).

    Returns
    -------
    weights : ndarray of shape (n_traces,)

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.datasets import dataset_weights
    >>> dataset_weights(np.ones((3, 4)), ["a", "a", "b"])
    array([0.125, 0.125, 0.25 ])
    """
    from ..signal import trace_lengths

    lengths = trace_lengths(calcium).astype(float)
    labels = np.asarray(groups)
    if labels.shape != (len(lengths),):
        raise ValueError(
            f"groups has shape {labels.shape} but calcium has {len(lengths)} traces; "
            "give one dataset label per trace."
        )
    weights = np.empty(len(labels))
    for label in np.unique(labels):
        mask = labels == label
        weights[mask] = 1.0 / max(lengths[mask].sum(), 1.0)
    return weights
