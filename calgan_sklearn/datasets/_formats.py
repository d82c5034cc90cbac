"""Recordings as the imaging pipelines leave them: suite2p, CaImAn, NWB and ``.npy``.

Every reader returns the Bunch of the other loaders without spikes
(``calcium`` float32 ``(n_traces, n_frames)``, ``spikes=None``, ``fs``,
per-trace ``dataset`` / ``neuron`` / ``indicator`` / ``units`` labels) plus
where each trace came from: ``roi`` (its row in the source file), ``n_rois``
(rows in the source) and ``source`` (the file or folder), so that results can
be written back in the input's shape (:func:`write_rates`).

Every reader takes ``rois``, the source rows to read (default: all that are
selected), so that a recording of any size can be read in chunks of neurons.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._validation import check_fs
from ..signal import rolling_baseline

__all__ = ["load_caiman", "load_npy", "load_nwb", "load_recording", "load_suite2p"]

#: Pip extra that installs each optional module.
_EXTRAS = {"h5py": "caiman", "pynwb": "nwb"}
#: File names of a suite2p plane folder.
_SUITE2P_FILES = ("F.npy", "Fneu.npy", "iscell.npy", "ops.npy")
#: Relative spread of frame intervals above which NWB timestamps count as irregular.
_RATE_RTOL = 0.02


def _require(module, what):
    """Import an optional dependency; an ImportError naming the pip extra if missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = _EXTRAS[module]
        raise ImportError(
            f"{what} needs the optional package {module!r}, which is not installed; "
            f'install it with: pip install "calgan_sklearn[{extra}]"'
        ) from None


def _check_file(path, what):
    path = Path(path)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "does not exist"
        raise ValueError(f"{path} {state}; expected {what}.")
    return path


def _select(rois, n_rois, default):
    """Sorted source rows to read: ``rois`` if given (checked), else ``default``."""
    if rois is None:
        return np.asarray(default, dtype=np.int64)
    rois = np.unique(np.asarray(rois, dtype=np.int64).ravel())
    if len(rois) and (rois[0] < 0 or rois[-1] >= n_rois):
        raise ValueError(f"rois must be row indices in [0, {n_rois}), got {rois[[0, -1]]}.")
    return rois


def _npy_rows(path, rows):
    """Rows of a 2-D ``.npy`` file as float32, through a memory map closed afterwards.

    The map is dropped before returning, so reading a large file in chunks
    keeps only the rows asked for in memory.
    """
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    try:
        return np.asarray(array[rows], dtype=np.float32)
    finally:
        del array


def _npy_shape(path, what):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path} could not be read as a numeric .npy array: {exc}") from None
    shape, dtype = array.shape, array.dtype
    del array
    if len(shape) != 2:
        raise ValueError(f"{path} holds an array of shape {shape}; expected {what}.")
    if not np.issubdtype(dtype, np.number):
        raise ValueError(f"{path} holds {dtype} values; expected numbers.")
    return shape


def _check_traces(calcium, source, labels, whole):
    """Infinite values are errors; traces without any value are named in a warning.

    A ``whole`` selection (not a chunk of one) without any value is an error.
    """
    if np.isinf(calcium).any():
        i = int(np.flatnonzero(np.isinf(calcium).any(axis=1))[0])
        raise ValueError(f"{source}: ROI {labels[i]} holds infinite values.")
    empty = ~np.isfinite(calcium).any(axis=1)
    if whole and empty.all() and len(calcium):
        raise ValueError(f"{source} holds no finite value in any selected trace (all NaN).")
    if empty.any():
        warnings.warn(
            f"{source}: ROI(s) {list(np.asarray(labels)[empty][:10])} hold only NaN; "
            "their rates will be NaN.",
            UserWarning,
            stacklevel=3,
        )


def _bunch(
    calcium, fs, rois, n_rois, *, kind, source, name, units, default, neuron=None, descr=""
):
    n = len(rois)
    neuron = np.asarray([str(r) for r in rois] if neuron is None else neuron, dtype=str)
    _check_traces(calcium, source, neuron, whole=len(rois) == len(default))
    return Bunch(
        calcium=calcium,
        spikes=None,
        fs=float(fs),
        dataset=np.full(n, name),
        neuron=neuron,
        indicator=np.full(n, "unknown"),
        units=np.full(n, units),
        roi=np.asarray(rois, dtype=np.int64),
        n_rois=int(n_rois),
        default_rois=np.asarray(default, dtype=np.int64),
        source=str(source),
        format=kind,
        DESCR=descr,
    )


# --------------------------------------------------------------------------- #
# suite2p
# --------------------------------------------------------------------------- #
def _suite2p_folder(path):
    """The plane folder itself, or ``path/plane0`` / ``path/suite2p/plane0``."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist; expected a suite2p plane folder.")
    for folder in (path, path / "plane0", path / "suite2p" / "plane0"):
        if (folder / "F.npy").is_file():
            return folder
    raise ValueError(
        f"{path} is not a suite2p plane folder: no F.npy in it (nor in plane0/ or "
        "suite2p/plane0/); expected F.npy, Fneu.npy, iscell.npy and ops.npy."
    )


def _suite2p_fs(folder):
    ops_file = folder / "ops.npy"
    if not ops_file.is_file():
        raise ValueError(
            f"{folder} has no ops.npy, so its frame rate is unknown; copy suite2p's "
            "ops.npy next to F.npy."
        )
    ops = np.load(ops_file, allow_pickle=True)
    ops = ops.item() if ops.dtype == object and ops.shape == () else None
    if not isinstance(ops, dict) or "fs" not in ops:
        raise ValueError(f"{ops_file} is not a suite2p ops dict with a frame rate 'fs'.")
    return check_fs(ops["fs"], f"ops['fs'] in {ops_file}")


def _dff(trace, fs, window, percentile):
    """dF/F of one trace against its running-percentile baseline (NaN if it has none)."""
    trace = trace.astype(np.float64)
    finite = np.isfinite(trace)
    if not finite.all():
        return np.full(trace.shape, np.nan), True
    base = rolling_baseline(trace, window, percentile, fs=fs)
    if (base <= 0).any():
        return np.full(trace.shape, np.nan), False
    return (trace - base) / base, True


def load_suite2p(
    path,
    neuropil_coef=0.7,
    baseline_percentile=8.0,
    baseline_window=60.0,
    cells_only=True,
    dff=True,
    rois=None,
):
    """Read a suite2p plane folder: neuropil-corrected dF/F of its cells.

    Reads ``F.npy`` and ``Fneu.npy`` (ROIs x frames, memory-mapped, so only
    the selected rows are loaded), ``iscell.npy`` and the frame rate
    ``ops['fs']`` from ``ops.npy``. Each trace is ``F - neuropil_coef * Fneu``
    and, with ``dff=True``, divided into dF/F against its running percentile
    baseline (:func:`calgan_sklearn.signal.rolling_baseline`):
    ``(Fc - F0) / F0``.

    Parameters
    ----------
    path : str or Path
        A suite2p plane folder (``.../suite2p/plane0``) or a folder holding
        ``plane0/`` or ``suite2p/plane0/``.
    neuropil_coef : float, default=0.7
        Fraction of the neuropil trace subtracted (suite2p's own default).
    baseline_percentile : float, default=8.0
        Percentile of the running baseline ``F0``.
    baseline_window : float, default=60.0
        Length in seconds of the running baseline window.
    cells_only : bool, default=True
        Read only the ROIs suite2p classified as cells (``iscell[:, 0] > 0.5``).
    dff : bool, default=True
        Return dF/F (``units="dff"``); ``False`` returns the corrected
        fluorescence ``F - neuropil_coef * Fneu`` (``units="arbitrary"``).
    rois : array-like of int, optional
        Rows of ``F.npy`` to read (default: all cells, or all ROIs with
        ``cells_only=False``); to read a large recording in chunks.

    Returns
    -------
    data : Bunch
        ``calcium`` float32 ``(n_traces, n_frames)``, ``fs``, ``spikes=None``,
        ``dataset`` (the folder name), ``neuron`` (ROI numbers), ``indicator``,
        ``units``, ``roi`` (rows of ``F.npy``), ``n_rois`` (rows in
        ``F.npy``), ``format`` (``"suite2p"``), ``default_rois`` (the rows
        read when ``rois`` is None, to read in chunks) and ``source``. A
        trace whose baseline is not positive (too much neuropil subtracted)
        has no dF/F: it is NaN, with a warning.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from calgan_sklearn.datasets import load_suite2p
    >>> plane = Path(tempfile.mkdtemp()) / "suite2p" / "plane0"
    >>> plane.mkdir(parents=True)
    >>> rng = np.random.default_rng(0)
    >>> np.save(plane / "F.npy", (100 + rng.normal(0, 1, (3, 600))).astype(np.float32))
    >>> np.save(plane / "Fneu.npy", np.full((3, 600), 50, np.float32))
    >>> np.save(plane / "iscell.npy", np.array([[1, 0.9], [0, 0.2], [1, 0.8]]))
    >>> np.save(plane / "ops.npy", {"fs": 30.0})
    >>> data = load_suite2p(plane.parent.parent)
    >>> data.calcium.shape, data.fs, data.neuron.tolist(), str(data.units[0])
    ((2, 600), 30.0, ['0', '2'], 'dff')
    """
    folder = _suite2p_folder(path)
    fs = _suite2p_fs(folder)
    n_rois, n_frames = _npy_shape(folder / "F.npy", "ROIs x frames (suite2p's F.npy)")
    fneu_file = folder / "Fneu.npy"
    if neuropil_coef and not fneu_file.is_file():
        raise ValueError(
            f"{folder} has no Fneu.npy for the neuropil correction; copy it next to F.npy "
            "or pass neuropil_coef=0."
        )
    if neuropil_coef and _npy_shape(fneu_file, "ROIs x frames") != (n_rois, n_frames):
        raise ValueError(
            f"{fneu_file} has shape {_npy_shape(fneu_file, 'ROIs x frames')} but F.npy has "
            f"{(n_rois, n_frames)}; they must come from the same suite2p run."
        )
    default = np.arange(n_rois)
    if cells_only:
        iscell_file = folder / "iscell.npy"
        if not iscell_file.is_file():
            raise ValueError(
                f"{folder} has no iscell.npy to select cells; copy it next to F.npy or pass "
                "cells_only=False."
            )
        iscell = np.load(iscell_file, allow_pickle=False)
        iscell = iscell.reshape(len(iscell), -1)[:, 0] if iscell.ndim else iscell
        if len(iscell) != n_rois:
            raise ValueError(f"{iscell_file} has {len(iscell)} rows but F.npy has {n_rois} ROIs.")
        default = np.flatnonzero(iscell > 0.5)
        if not len(default):
            raise ValueError(
                f"suite2p classified no ROI of {folder} as a cell (iscell[:, 0] is 0 "
                "everywhere); pass cells_only=False to read all ROIs."
            )
    rows = _select(rois, n_rois, default)
    calcium = _npy_rows(folder / "F.npy", rows)
    if neuropil_coef:
        calcium -= np.float32(neuropil_coef) * _npy_rows(fneu_file, rows)
    units = "arbitrary"
    if dff:
        units = "dff"
        bad = []
        for i, trace in enumerate(calcium):
            calcium[i], ok = _dff(trace, fs, baseline_window, baseline_percentile)
            if not ok:
                bad.append(int(rows[i]))
        if bad:
            warnings.warn(
                f"{folder}: ROI(s) {bad[:10]} ({len(bad)} in all) have a baseline at or below "
                f"zero after subtracting {neuropil_coef} x neuropil, so no dF/F; they are "
                "left NaN. Lower neuropil_coef, or pass dff=False.",
                UserWarning,
                stacklevel=2,
            )
    name = folder.parent.parent.name if folder.parent.name == "suite2p" else folder.name
    return _bunch(
        calcium,
        fs,
        rows,
        n_rois,
        source=folder,
        kind="suite2p",
        name=name or "suite2p",
        default=default,
        units=units,
        descr=f"suite2p plane folder {folder}: F - {neuropil_coef} Fneu"
        + (f", dF/F against a {baseline_percentile}th percentile baseline" if dff else ""),
    )


# --------------------------------------------------------------------------- #
# CaImAn
# --------------------------------------------------------------------------- #
def _h5_array(group, key):
    """A dataset of an h5py group, or None if absent or saved as CaImAn's 'NoneType'."""
    if key not in group:
        return None
    item = group[key]
    if not hasattr(item, "shape") or item.shape == () and item.dtype.kind in "SOU":
        return None
    return item


def load_caiman(path, accepted_only=True, rois=None):
    """Read CaImAn's HDF5 results (``cnm.save("results.hdf5")``).

    The traces are ``estimates/F_dff`` (dF/F, from CaImAn's
    ``detrend_df_f``) if the file holds it, else the denoised traces plus
    their residuals ``estimates/C + estimates/YrA`` (arbitrary units); the
    frame rate is ``params/data/fr``.

    Parameters
    ----------
    path : str or Path
        The ``.hdf5`` file written by ``CNMF.save``.
    accepted_only : bool, default=True
        Read only the components CaImAn accepted (``estimates/idx_components``)
        when the file records them.
    rois : array-like of int, optional
        Components (rows of ``C``) to read; to read a large recording in chunks.

    Returns
    -------
    data : Bunch
        As :func:`load_suite2p`; ``roi`` are component indices.

    Examples
    --------
    >>> import tempfile, os, h5py, numpy as np
    >>> from calgan_sklearn.datasets import load_caiman
    >>> file = os.path.join(tempfile.mkdtemp(), "results.hdf5")
    >>> with h5py.File(file, "w") as f:
    ...     f["estimates/F_dff"] = np.zeros((2, 500))
    ...     f["estimates/idx_components"] = np.array([1])
    ...     f["params/data/fr"] = 15.0
    >>> data = load_caiman(file)
    >>> data.calcium.shape, data.fs, data.neuron.tolist(), str(data.units[0])
    ((1, 500), 15.0, ['1'], 'dff')
    """
    h5py = _require("h5py", "Reading CaImAn results")
    path = _check_file(path, "CaImAn results saved as .hdf5")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} could not be read as an HDF5 file: {exc}") from None
    with f:
        if "estimates" not in f:
            raise ValueError(
                f"{path} holds no 'estimates' group, so it is not a file saved by CaImAn's "
                f"CNMF.save (top-level keys: {sorted(f.keys())[:10]})."
            )
        est = f["estimates"]
        fr = _h5_array(f["params/data"], "fr") if "params/data" in f else None
        if fr is None:
            raise ValueError(f"{path} holds no frame rate params/data/fr; pass it to CaImAn.")
        fs = check_fs(fr[()], f"params/data/fr in {path}")
        dff = _h5_array(est, "F_dff")
        traces = dff if dff is not None else _h5_array(est, "C")
        if traces is None or traces.ndim != 2:
            raise ValueError(
                f"{path} holds neither estimates/F_dff nor estimates/C as components x frames."
            )
        n_rois = traces.shape[0]
        accepted = _h5_array(est, "idx_components") if accepted_only else None
        default = np.arange(n_rois) if accepted is None else np.sort(accepted[()].ravel())
        rows = _select(rois, n_rois, default)
        calcium = np.asarray(traces[rows], dtype=np.float32)
        if dff is None:
            residual = _h5_array(est, "YrA")
            if residual is not None:
                if residual.shape != traces.shape:
                    raise ValueError(
                        f"{path}: estimates/YrA has shape {residual.shape} but estimates/C has "
                        f"{traces.shape}."
                    )
                calcium += np.asarray(residual[rows], dtype=np.float32)
    return _bunch(
        calcium,
        fs,
        rows,
        n_rois,
        source=path,
        kind="caiman",
        name=path.stem,
        default=default,
        units="dff" if dff is not None else "arbitrary",
        descr=f"CaImAn results {path}: " + ("F_dff" if dff is not None else "C + YrA"),
    )


# --------------------------------------------------------------------------- #
# NWB
# --------------------------------------------------------------------------- #
def nwb_series(nwbfile, series=None):
    """The ``RoiResponseSeries`` of an open NWB file's ophys module, or the one named.

    Looks in the processing modules (``processing['ophys']``) for
    ``Fluorescence`` and ``DfOverF`` containers and series added directly
    (as :func:`write_rates_nwb` adds them); returns ``(series, is_dff)``.
    A clear error lists the series when there are several and ``series`` is
    not one of them.
    """
    from pynwb.ophys import DfOverF, Fluorescence, RoiResponseSeries

    found = {}
    for module in nwbfile.processing.values():
        for container in module.data_interfaces.values():
            if isinstance(container, RoiResponseSeries):  # as write_rates_nwb adds them
                found[container.name] = (container, False)
            elif isinstance(container, (Fluorescence, DfOverF)):
                for name, s in container.roi_response_series.items():
                    found[name] = (s, isinstance(container, DfOverF))
    if not found:
        raise ValueError(
            "the NWB file holds no RoiResponseSeries in a Fluorescence or DfOverF container "
            "of a processing module (processing['ophys'])."
        )
    if series is None:
        if len(found) > 1:
            raise ValueError(
                f"the NWB file holds several RoiResponseSeries {sorted(found)}; choose one "
                "with series=NAME (calgan: --series NAME)."
            )
        return next(iter(found.values()))
    if series not in found:
        raise ValueError(f"no RoiResponseSeries named {series!r}; the file has {sorted(found)}.")
    return found[series]


def _series_fs(s, source):
    if s.rate is not None:
        return check_fs(s.rate, f"rate of {s.name} in {source}")
    times = np.asarray(s.timestamps[:], dtype=np.float64)
    if len(times) < 2:
        raise ValueError(f"{s.name} in {source} has fewer than two timestamps: no frame rate.")
    steps = np.diff(times)
    if np.ptp(steps) > _RATE_RTOL * np.median(steps):
        warnings.warn(
            f"{s.name} in {source}: frame intervals vary by more than "
            f"{_RATE_RTOL:.0%}; using the median rate.",
            UserWarning,
            stacklevel=3,
        )
    return check_fs(1.0 / np.median(steps), f"frame rate of {s.name} in {source}")


def load_nwb(path, series=None, rois=None):
    """Read the ROI traces of an NWB file through ``pynwb``.

    The traces are a ``RoiResponseSeries`` of a ``Fluorescence``
    (``units="arbitrary"``) or ``DfOverF`` (``units="dff"``) container in a
    processing module (``processing['ophys']``); the frame rate is the
    series' ``rate`` or, without one, the median step of its timestamps.

    Parameters
    ----------
    path : str or Path
        The ``.nwb`` file.
    series : str, optional
        Name of the series to read; required when the file holds several.
    rois : array-like of int, optional
        Columns of the series (ROIs) to read; to read it in chunks.

    Returns
    -------
    data : Bunch
        As :func:`load_suite2p`; ``neuron`` are the ROI ids of the
        segmentation table, ``roi`` the columns of the series and ``series``
        its name.
    """
    _require("pynwb", "Reading NWB files")
    from pynwb import NWBHDF5IO

    path = _check_file(path, "an NWB file (.nwb)")
    try:
        io = NWBHDF5IO(str(path), mode="r")
        nwbfile = io.read()
    except Exception as exc:  # h5py and hdmf raise several types for foreign files
        raise ValueError(f"{path} could not be read as an NWB file: {exc}") from None
    with io:
        s, is_dff = nwb_series(nwbfile, series)
        fs = _series_fs(s, path)
        if s.data.ndim == 1:
            raise ValueError(f"{s.name} in {path} is 1-D; expected frames x ROIs.")
        n_rois = s.data.shape[1]
        rows = _select(rois, n_rois, np.arange(n_rois))
        calcium = np.ascontiguousarray(np.asarray(s.data[:, rows], dtype=np.float32).T)
        ids = np.asarray(s.rois.table.id[:])[np.asarray(s.rois.data[:])[rows]]
        data = _bunch(
            calcium,
            fs,
            rows,
            n_rois,
            source=path,
            kind="nwb",
            name=path.stem,
            default=np.arange(n_rois),
            units="dff" if is_dff else "arbitrary",
            neuron=[str(i) for i in ids],
            descr=f"NWB file {path}: RoiResponseSeries {s.name}",
        )
        data["series"] = s.name
    return data


# --------------------------------------------------------------------------- #
# plain arrays and dispatch
# --------------------------------------------------------------------------- #
def load_npy(path, fs, units="arbitrary", rois=None):
    """Read a plain ``.npy`` array of traces (neurons x frames), memory-mapped.

    Parameters
    ----------
    path : str or Path
        A 2-D numeric ``.npy`` file, one trace per row, NaN-padded at the end.
    fs : float
        Frame rate in Hz (the file does not record it).
    units : {"arbitrary", "dff"}, default="arbitrary"
        What the values are.
    rois : array-like of int, optional
        Rows to read; to read a large file in chunks.

    Returns
    -------
    data : Bunch
        As :func:`load_suite2p`; ``neuron`` are row numbers.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from calgan_sklearn.datasets import load_npy
    >>> file = os.path.join(tempfile.mkdtemp(), "traces.npy")
    >>> np.save(file, np.ones((4, 300)))
    >>> load_npy(file, fs=30.0, rois=[1, 3]).calcium.shape
    (2, 300)
    """
    path = _check_file(path, "a .npy array of traces (neurons x frames)")
    if fs is None:
        raise ValueError(f"{path} records no frame rate; give it (calgan: --fs HZ).")
    fs = check_fs(fs)
    if units not in ("arbitrary", "dff"):
        raise ValueError(f"units must be 'arbitrary' or 'dff', got {units!r}.")
    n_rows, _ = _npy_shape(path, "a 2-D array of traces, neurons x frames")
    rows = _select(rois, n_rows, np.arange(n_rows))
    calcium = _npy_rows(path, rows)
    return _bunch(
        calcium,
        fs,
        rows,
        n_rows,
        source=path,
        kind="npy",
        name=path.stem,
        units=units,
        default=np.arange(n_rows),
        descr=str(path),
    )


def _load_csv(path, fs, units="arbitrary", rois=None):
    """A SpikeFinder-layout calcium CSV as a recording Bunch (``neuron``: column names)."""
    from ._csv import read_calcium_csv

    if fs is None:
        raise ValueError(f"{path} records no frame rate; give it (calgan: --fs HZ).")
    calcium, columns = read_calcium_csv(path)
    rows = _select(rois, len(columns), np.arange(len(columns)))
    return _bunch(
        calcium[rows].astype(np.float32),
        check_fs(fs),
        rows,
        len(columns),
        source=Path(path),
        kind="csv",
        name=Path(path).name.split(".")[0],
        units=units,
        default=np.arange(len(columns)),
        neuron=[columns[i] for i in rows],
        descr=str(path),
    )


def recording_format(path):
    """The format of a recording.

    Returns ``"suite2p"`` (a plane folder or a folder holding ``plane0/``),
    ``"caiman"`` (``.hdf5``/``.h5``), ``"nwb"``, ``"npy"``, ``"csv"`` or None.
    """
    path = Path(path)
    if path.is_dir():
        try:
            _suite2p_folder(path)
        except ValueError:
            return None
        return "suite2p"
    return {".nwb": "nwb", ".npy": "npy", ".hdf5": "caiman", ".h5": "caiman", ".csv": "csv"}.get(
        path.suffix.lower()
    )


def load_recording(path, fs=None, rois=None, **kwargs):
    """Read a recording in any supported format, at its own frame rate.

    Parameters
    ----------
    path : str or Path
        A suite2p plane folder (or a folder holding ``plane0/``), CaImAn
        ``.hdf5`` results, an ``.nwb`` file, a ``.npy`` array or a
        SpikeFinder-layout calcium ``.csv``.
    fs : float, optional
        Frame rate in Hz: required for ``.npy`` and ``.csv``; for the other formats it
        replaces the rate recorded in the file (with a warning if they differ).
    rois : array-like of int, optional
        Source rows to read, for reading in chunks.
    **kwargs
        Passed to the format's reader (e.g. ``neuropil_coef``, ``series``).

    Returns
    -------
    data : Bunch
        As :func:`load_suite2p`; ``format`` names the format.
    """
    kind = recording_format(path)
    if kind is None:
        raise ValueError(
            f"{path} is not a recording this package reads: expected a suite2p plane folder "
            "(F.npy, Fneu.npy, iscell.npy, ops.npy), CaImAn results (.hdf5), an NWB file "
            "(.nwb), a .npy array or a calcium .csv."
        )
    if kind in ("npy", "csv"):
        data = (load_npy if kind == "npy" else _load_csv)(path, fs, rois=rois, **kwargs)
    else:
        reader = {"suite2p": load_suite2p, "caiman": load_caiman, "nwb": load_nwb}[kind]
        data = reader(path, rois=rois, **kwargs)
        if fs is not None and not np.isclose(check_fs(fs), data.fs, rtol=1e-3):
            warnings.warn(
                f"{path} records a frame rate of {data.fs:g} Hz; using the {fs:g} Hz given.",
                UserWarning,
                stacklevel=2,
            )
            data.fs = float(fs)
    return data
