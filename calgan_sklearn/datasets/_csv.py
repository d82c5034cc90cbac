"""SpikeFinder-layout CSV files: the one strict reader and the writers.

A SpikeFinder CSV holds one trace per column under a header row of column
names and one row per frame; shorter traces are padded at the end with empty
fields. Every such file the package reads goes through :func:`read_traces_csv`
and every one it writes through :func:`_write_csv` (written next to its
destination, then moved into place).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..signal import trace_lengths

__all__ = ["read_calcium_csv", "read_traces_csv", "write_rates_csv"]

_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _read_text(filename):
    """The lines of a CSV file as text; a clear error for missing or binary files."""
    path = Path(filename)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ValueError(f"{path} {what}; expected a CSV file such as 1.test.calcium.csv.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not a text CSV file (byte {exc.start} is not UTF-8 text); expected "
            "a comma-separated file with a header row '0,1,2,...', not a .mat, .keras or "
            "spreadsheet file."
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"{path} holds NUL bytes, so it is a binary file, not a CSV; expected a "
            "comma-separated text file with a header row '0,1,2,...'."
        )
    if text and not text.endswith(("\n", "\r")):
        warnings.warn(
            f"{path} does not end with a line break, as a file cut off while it was "
            "written or copied would not; if so, its last row is incomplete and its last "
            "value may be cut short. Check the end of the file.",
            UserWarning,
            stacklevel=4,
        )
    return text.splitlines()


def _check_header(path, header, first_row):
    """Column names of the header row; errors for other separators, data rows, indexes."""
    names = [name.strip().strip('"') for name in header.split(",")]
    for sep, word in ((";", "semicolons"), ("\t", "tabs")):
        if sep in header or sep in first_row:
            raise ValueError(
                f"{path} separates fields with {word}; SpikeFinder CSVs are comma-separated "
                "with '.' as the decimal point. Save it again as such, e.g. "
                "pandas.read_csv(path, sep=';', decimal=',').to_csv(path, index=False)."
            )
    if names[0] == "" and len(names) > 1:
        raise ValueError(
            f"{path}: the first column has no name in the header row; it is most likely a "
            "row index written by pandas' to_csv without index=False. Remove that column "
            "(or write the file with index=False)."
        )
    empty = [i + 1 for i, name in enumerate(names) if name == ""]
    if empty:
        raise ValueError(
            f"{path}: header field(s) {empty[:10]} are empty; every column needs a name "
            "(SpikeFinder uses '0,1,2,...')."
        )
    for name in names:
        if _FLOAT.fullmatch(name) and not name.lstrip("+-").isdigit():
            raise ValueError(
                f"{path}: the first row holds the number {name!r}, not a column name: the "
                "file seems to have no header row. Add one ('0,1,2,...'); otherwise its "
                "first frame would be lost."
            )
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(
                f"{path}: column name {name!r} appears more than once in the header; give "
                "every neuron its own column name."
            )
        seen.add(name)
    return names


def _check_rows(path, lines, n_columns):
    """Every data row has as many fields as the header (else: truncated or mis-separated)."""
    counts = np.fromiter((line.count(",") + 1 for line in lines), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero(counts != n_columns)
    if not len(bad):
        return
    i = int(bad[0])
    got = int(counts[i])
    if i == len(lines) - 1 and got < n_columns:
        hint = (
            "it is the last line, so the file looks cut off (truncated while it was "
            "written or copied); write or copy it again"
        )
    elif got < n_columns:
        hint = "pad shorter traces with empty fields ('0.1,,') so every row has every column"
    else:
        hint = (
            "decimal commas ('0,5') or thousands separators ('1,000') split numbers into "
            "several fields; use '.' as the decimal point and no thousands separators"
        )
    raise ValueError(
        f"{path}, row {i + 2} has {got} field(s) but the header has {n_columns} "
        f"({len(bad)} row(s) differ); {hint}."
    )


def read_traces_csv(filename, kind="calcium"):
    """Read one SpikeFinder-layout CSV strictly: the one reader of every such file.

    The file must have a header row of distinct column names and one row per
    frame with exactly one field per column; shorter traces are padded at the
    end with empty fields. Anything else (other separators, decimal commas, a
    missing header, a pandas index column, a file cut off mid-line, text or
    infinite values, gaps inside a trace, and for ``kind="spikes"`` negative or
    fractional counts) raises a ``ValueError`` that names the file, column and
    row.

    Parameters
    ----------
    filename : str or path-like
        The CSV file.
    kind : {"calcium", "spikes"}, default="calcium"
        What the file holds; spikes must be non-negative integer counts.

    Returns
    -------
    traces : ndarray of shape (n_traces, n_frames)
        One row per column of the file, NaN-padded at the end (all-NaN rows
        for columns that hold no value).
    columns : list of str
        The column names, in file order.

    Raises
    ------
    ValueError
        If the file is not a SpikeFinder-layout CSV; the message names the
        file, column and row and says how to fix it.

    See Also
    --------
    load_spikefinder : Read a folder of ``N.<split>.calcium/spikes.csv`` pairs.
    write_rates_csv : Write traces in the same layout.

    Examples
    --------
    >>> import tempfile, os
    >>> from calgan_sklearn.datasets import read_traces_csv
    >>> file = os.path.join(tempfile.mkdtemp(), "1.train.spikes.csv")
    >>> with open(file, "w") as f:
    ...     _ = f.write("0,1\\n0,1\\n2,\\n")
    >>> read_traces_csv(file, kind="spikes")
    (array([[ 0.,  2.],
           [ 1., nan]]), ['0', '1'])
    >>> with open(file, "w") as f:
    ...     _ = f.write("0,1\\n0,1\\n0.5,\\n")
    >>> read_traces_csv(file, kind="spikes")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...1.train.spikes.csv, column '0', row 3 holds the fractional value 0.5; ...
    """
    path = Path(filename)
    lines = _read_text(path)
    while lines and not lines[-1].strip() and (len(lines) < 2 or "," in lines[0]):
        lines.pop()  # trailing blank lines carry no fields in a multi-column file
    if not lines or not lines[0].strip():
        raise ValueError(
            f"{path} is empty; expected a header row '0,1,2,...' and one row per 10 ms sample."
        )
    if len(lines) == 1:
        raise ValueError(f"{path} has a header but no samples; expected one row per frame.")
    columns = _check_header(path, lines[0], lines[1])
    _check_rows(path, lines[1:], len(columns))
    try:
        df = pd.read_csv(io.StringIO("\n".join(lines) + "\n"), dtype=str, skip_blank_lines=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise ValueError(f"{path} is not a valid CSV file: {exc}") from None
    df.columns = columns
    values = df.apply(lambda s: pd.to_numeric(s.str.strip(), errors="coerce"))
    values = values.astype(np.float64)
    bad = values.isna() & df.notna() & (df.apply(lambda s: s.str.strip()) != "")
    if bad.to_numpy().any():
        col = bad.columns[bad.any(axis=0).to_numpy()][0]
        row = int(np.flatnonzero(bad[col].to_numpy())[0])
        raise ValueError(
            f"{path}, column {col!r}, row {row + 2} holds {df[col].iloc[row]!r}; "
            "expected a number or an empty field (NaN padding)."
        )
    return _check_values(values, path, kind), columns


def _check_values(values, filename, kind):
    """Finite values, NaN only as padding at the end, spikes as counts; (n_traces, n_frames)."""
    X = values.to_numpy(dtype=np.float64).T
    if np.isinf(X).any():
        i = int(np.flatnonzero(np.isinf(X).any(axis=1))[0])
        row = int(np.flatnonzero(np.isinf(X[i]))[0])
        raise ValueError(
            f"{filename}, column {values.columns[i]!r}, row {row + 2} holds an infinite "
            "value; expected finite numbers."
        )
    lengths = trace_lengths(X)
    inner_nan = np.isnan(X).sum(axis=1) - (X.shape[1] - lengths)
    if (inner_nan > 0).any():
        i = int(np.flatnonzero(inner_nan > 0)[0])
        row = int(np.flatnonzero(np.isnan(X[i, : lengths[i]]))[0])
        raise ValueError(
            f"{filename}, column {values.columns[i]!r} has an empty cell at row {row + 2} "
            "before its last value; only NaN padding at the end of a column is supported."
        )
    if kind == "spikes":
        finite = np.isfinite(X)
        for problem, mask in (
            ("negative", finite & (X < 0)),
            ("fractional", finite & (np.round(X) != X)),
        ):
            if mask.any():
                i = int(np.flatnonzero(mask.any(axis=1))[0])
                row = int(np.flatnonzero(mask[i])[0])
                raise ValueError(
                    f"{filename}, column {values.columns[i]!r}, row {row + 2} holds the "
                    f"{problem} value {float(X[i, row])!r}; spikes must be non-negative integer "
                    "counts per frame."
                )
    return X


def read_calcium_csv(path):
    """Read a calcium CSV: :func:`read_traces_csv` with ``kind="calcium"``.

    The reader ``calgan infer`` uses; the same strict rules as
    :func:`~calgan_sklearn.datasets.load_spikefinder` apply, and a malformed
    file raises a ``ValueError`` naming the file, column and row.

    Parameters
    ----------
    path : str or path-like
        A CSV with a header row of column names and one row per frame; shorter
        traces are padded at the end with empty fields.

    Returns
    -------
    calcium : ndarray of shape (n_traces, n_frames)
        The columns as rows, NaN-padded; a column without any value is an
        all-NaN row.
    columns : list of str
        The header, to write results back in the same layout.

    See Also
    --------
    read_traces_csv : The reader, also for spike files.
    write_rates_csv : Write results in the same layout.
    """
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
        One trace per row, NaN-padded at the end.
    columns : list of str
        One name per trace.
    path : str or path-like
        File to write; its folder is created if missing.
    overwrite : bool, default=False
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from calgan_sklearn.datasets import read_calcium_csv, write_rates_csv
    >>> file = os.path.join(tempfile.mkdtemp(), "rates.csv")
    >>> _ = write_rates_csv(np.array([[0.5, 1.0, np.nan], [0.0, 2.0, 3.0]]), ["a", "b"], file)
    >>> read_calcium_csv(file)
    (array([[0.5, 1. , nan],
           [0. , 2. , 3. ]]), ['a', 'b'])
    """
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 2 or rates.shape[0] != len(columns):
        raise ValueError(
            f"rates has shape {rates.shape} but {len(columns)} column names were given; "
            "expected one trace per column."
        )
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name for the rates CSV.")
    _check_new_files([path], overwrite)
    frame = pd.DataFrame(rates.T, columns=list(columns))
    _write_csv(frame, path, float_format="%.9g")
    return path


def _check_new_files(paths, overwrite):
    """Refuse to replace existing files unless ``overwrite``; checked before any write."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        more = f" ({len(existing)} file(s) would be replaced)" if len(existing) > 1 else ""
        raise FileExistsError(
            f"{existing[0]} already exists{more}; pass overwrite=True (calgan: --overwrite) "
            "or choose another name."
        )


def _write_csv(frame, path, float_format=None):
    """Write ``frame`` without index, NaN as empty fields, all or nothing.

    The file is written as ``.<name>.partial`` next to ``path`` and then moved
    into place, so an interrupted write never leaves a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    frame.to_csv(tmp, index=False, float_format=float_format, na_rep="")
    tmp.replace(path)
    return path
