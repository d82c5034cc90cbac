"""Spike rates written back in the shape and format of the recording they came from.

Every writer refuses to replace an existing file unless ``overwrite=True``,
writes next to its destination first and moves the file into place, so an
interrupted write leaves no half-written file, and never modifies its input.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ._csv import _check_new_files, write_rates_csv
from ._formats import _require, nwb_series

__all__ = ["RatesNpyWriter", "write_rates", "write_rates_npy", "write_rates_nwb"]

#: Output suffixes :func:`write_rates` knows.
RATE_SUFFIXES = (".csv", ".npy", ".nwb")


def _partial(path):
    return path.with_name(f".{path.name}.partial")


def _check_destination(path, overwrite, source=None):
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name to write the rates to.")
    if source is not None and path.exists() and path.resolve() == Path(source).resolve():
        raise ValueError(f"{path} is the input file; writing there would modify the input.")
    _check_new_files([path], overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class RatesNpyWriter:
    """Write a float32 ``.npy`` array of ``shape`` row by row, in increasing row order.

    Rows not written are NaN. Memory use is that of the rows passed to
    :meth:`write`, whatever the size of the array; the file appears at
    ``path`` only when :meth:`close` completes (use it as a context manager).

    Parameters
    ----------
    path : str or Path
    shape : tuple of int
        ``(n_rows, n_frames)`` of the whole array.
    overwrite : bool, default=False

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from calgan_sklearn.datasets import RatesNpyWriter
    >>> file = os.path.join(tempfile.mkdtemp(), "rates.npy")
    >>> with RatesNpyWriter(file, (3, 2)) as out:
    ...     out.write([1], np.ones((1, 2)))
    >>> np.load(file)
    array([[nan, nan],
           [ 1.,  1.],
           [nan, nan]], dtype=float32)
    """

    def __init__(self, path, shape, *, overwrite=False):
        self.path = _check_destination(path, overwrite)
        self.shape = tuple(int(n) for n in shape)
        self._tmp = _partial(self.path)
        self._file = open(self._tmp, "wb")  # noqa: SIM115 (closed in close/abort)
        header = {"descr": "<f4", "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._file, header)
        self._next = 0
        self._nan_row = np.full(self.shape[1], np.nan, dtype="<f4").tobytes()

    def _pad_to(self, row):
        for _ in range(self._next, row):
            self._file.write(self._nan_row)
        self._next = max(self._next, row)

    def write(self, rows, values):
        """Write ``values`` (n, n_frames) at ``rows`` (increasing, after those written)."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        values = np.asarray(values, dtype="<f4")
        if values.shape != (len(rows), self.shape[1]):
            raise ValueError(
                f"expected rates of shape {(len(rows), self.shape[1])}, got {values.shape}."
            )
        if len(rows) and (
            rows[0] < self._next or (np.diff(rows) <= 0).any() or rows[-1] >= self.shape[0]
        ):
            raise ValueError("rows must increase, follow those written and lie in the array.")
        for row, value in zip(rows, values):
            self._pad_to(row)
            self._file.write(value.tobytes())
            self._next = row + 1

    def close(self):
        """Pad the remaining rows with NaN and move the file into place."""
        self._pad_to(self.shape[0])
        self._file.close()
        self._tmp.replace(self.path)
        return self.path

    def abort(self):
        """Drop the partial file."""
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_rates_npy(rates, path, *, rois=None, n_rois=None, overwrite=False):
    """Write rates as a float32 ``.npy`` array of the input's shape.

    Parameters
    ----------
    rates : array-like of shape (n_traces, n_frames)
    path : str or Path
    rois : array-like of int, optional
        Row of the input each trace came from (a loader's ``data.roi``);
        default: rows in order.
    n_rois : int, optional
        Rows of the input (``data.n_rois``); rows without a trace are NaN.
    overwrite : bool, default=False
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    path : pathlib.Path
    """
    rates = np.asarray(rates, dtype=np.float32)
    if rates.ndim != 2:
        raise ValueError(f"rates must be 2-D (traces x frames), got shape {rates.shape}.")
    rois = np.arange(len(rates)) if rois is None else np.asarray(rois, dtype=np.int64)
    n_rois = len(rates) if n_rois is None else int(n_rois)
    if len(rois) != len(rates):
        raise ValueError(f"{len(rois)} rois for {len(rates)} traces; give one per trace.")
    order = np.argsort(rois, kind="stable")
    with RatesNpyWriter(path, (n_rois, rates.shape[1]), overwrite=overwrite) as out:
        out.write(rois[order], rates[order])
    return out.path


def write_rates_nwb(
    rates, source, path, *, series=None, rois=None, name="inferred_spike_rates", overwrite=False
):
    """Write a copy of an NWB file with the rates as a new ``RoiResponseSeries``.

    The new series (``unit="spikes per frame"``) goes into the processing
    module of the series the calcium came from, on the same frames (same
    ``rate``/``starting_time``, or linked timestamps) and linked to the same
    rows of the same ROI table. ``source`` itself is never modified.

    Parameters
    ----------
    rates : array-like of shape (n_traces, n_frames)
    source : str or Path
        The NWB file the calcium was read from.
    path : str or Path
        The copy to write.
    series : str, optional
        Name of the source series (as for :func:`load_nwb`).
    rois : array-like of int, optional
        Column of the source series each trace came from (``data.roi``);
        default: all, in order.
    name : str, default="inferred_spike_rates"
        Name of the new series.
    overwrite : bool, default=False
        Replace an existing ``path`` instead of raising :class:`FileExistsError`.

    Returns
    -------
    path : pathlib.Path
    """
    _require("pynwb", "Writing NWB files")
    from hdmf.common import DynamicTableRegion
    from pynwb import NWBHDF5IO
    from pynwb.ophys import RoiResponseSeries

    source = Path(source)
    path = _check_destination(path, overwrite, source=source)
    rates = np.asarray(rates, dtype=np.float32)
    tmp = _partial(path)
    shutil.copyfile(source, tmp)
    try:
        with NWBHDF5IO(str(tmp), mode="a") as io:
            nwbfile = io.read()
            s, _ = nwb_series(nwbfile, series)
            cols = np.arange(s.data.shape[1]) if rois is None else np.asarray(rois, dtype=int)
            if rates.shape != (len(cols), s.data.shape[0]):
                raise ValueError(
                    f"rates of shape {rates.shape} do not fit series {s.name} "
                    f"({s.data.shape[0]} frames, {len(cols)} ROIs written)."
                )
            module = s.parent.parent
            if name in module.data_interfaces:
                raise ValueError(
                    f"{source} already holds {name!r} in processing[{module.name!r}]; choose "
                    "another name."
                )
            region = DynamicTableRegion(
                name="rois",
                data=np.asarray(s.rois.data[:])[cols].tolist(),
                description=f"the ROIs of {s.name}",
                table=s.rois.table,
            )
            timing = (
                {"rate": s.rate, "starting_time": s.starting_time}
                if s.rate is not None
                else {"timestamps": s}
            )
            module.add(
                RoiResponseSeries(
                    name=name,
                    data=rates.T,
                    rois=region,
                    unit="spikes per frame",
                    description=f"spike rates inferred by calgan_sklearn from {s.name}",
                    **timing,
                )
            )
            io.write(nwbfile)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def write_rates(rates, data, path, *, overwrite=False):
    """Write rates in the format of ``path``'s suffix, in the layout of ``data``'s source.

    ``.csv``: a SpikeFinder-layout CSV, one column per trace named
    ``data.neuron``; ``.npy``: an array of the input's shape (NaN for rows
    that were not read, e.g. suite2p ROIs that are not cells); ``.nwb``: a copy
    of the NWB input with a new series (:func:`write_rates_nwb`).

    Parameters
    ----------
    rates : array-like of shape (n_traces, n_frames)
    data : Bunch
        What a loader returned for the calcium (``neuron``, ``roi``,
        ``n_rois``, ``source``, ``format``).
    path : str or Path
    overwrite : bool, default=False

    Returns
    -------
    path : pathlib.Path
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return write_rates_csv(rates, list(data.neuron), path, overwrite=overwrite)
    if suffix == ".npy":
        return write_rates_npy(
            rates, path, rois=data.get("roi"), n_rois=data.get("n_rois"), overwrite=overwrite
        )
    if suffix == ".nwb":
        if data.get("format") != "nwb":
            raise ValueError(
                f"{path}: rates are written to NWB as a copy of an NWB input, but the input "
                f"is {data.get('format', 'not an NWB file')}; write .npy or .csv instead."
            )
        return write_rates_nwb(
            rates,
            data.source,
            path,
            series=data.get("series"),
            rois=data.roi,
            overwrite=overwrite,
        )
    raise ValueError(f"{path}: unknown output format; use one of {', '.join(RATE_SUFFIXES)}.")
