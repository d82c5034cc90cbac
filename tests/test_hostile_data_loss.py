"""Hostile input, kind 1: nothing a user has is lost or changed.

The command line runs as a subprocess, as a user runs it. Calls that fail their
checks stop before TensorFlow is imported, so they run side by side and take
about a second each.
"""

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from calgan_sklearn.cli import main
from calgan_sklearn.datasets import read_calcium_csv, write_rates_csv

CSV = "0,1\n0.1,0.2\n0.3,0.4\n0.5,\n"


def calgan(*args, cwd=None):
    """``python -m calgan_sklearn.cli ARGS`` as a started process."""
    return subprocess.Popen(
        [sys.executable, "-m", "calgan_sklearn.cli", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run_side_by_side(cases, cwd, width=2):
    """Run ``{name: args}`` at most ``width`` at a time (the test machine has 2 cores)."""
    results, names = {}, list(cases)
    for start in range(0, len(names), width):
        procs = {name: calgan(*cases[name], cwd=cwd) for name in names[start : start + width]}
        results.update({name: finish(proc) for name, proc in procs.items()})
    return results


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "in.csv").write_text(CSV)
    (tmp_path / "rates.csv").write_text("keep me\n")
    (tmp_path / "windows.csv").write_text("keep me too\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "estimator.json").write_text("{}")
    (tmp_path / "a_file").write_text("not a folder\n")
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "benchmark.csv").write_text("old table\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "link.csv").symlink_to(tmp_path / "in.csv")
    return tmp_path


REFUSED = {
    "infer onto its input": ["infer", "--input", "in.csv", "--output", "in.csv"],
    "infer onto its input, --overwrite": [
        "infer",
        "--input",
        "in.csv",
        "--output",
        "in.csv",
        "--overwrite",
    ],
    "infer onto its input by another path": [
        "infer",
        "--input",
        "in.csv",
        "--output",
        "../{name}/in.csv",
        "--overwrite",
    ],
    "infer onto its input through a link": [
        "infer",
        "--input",
        "link.csv",
        "--output",
        "in.csv",
        "--overwrite",
    ],
    "infer onto an existing file": ["infer", "--input", "in.csv", "--output", "rates.csv"],
    "infer onto a folder": ["infer", "--input", "in.csv", "--output", "data", "--overwrite"],
    "sample onto an existing file": ["sample", "--out", "windows.csv", "--epochs", "1"],
    "fit onto a saved model": ["fit", "--data", "data", "--out", "model"],
    "fit onto a file": ["fit", "--data", "data", "--out", "a_file", "--overwrite"],
    "fit below a file": ["fit", "--data", "data", "--out", "a_file/model"],
    "benchmark onto an old table": ["benchmark", "--data", "data", "--out", "bench"],
    "simulate onto files": ["simulate", "--out", "sim", "--n-neurons", "1", "--duration", "2"],
}
#: The ones also run as a subprocess (each costs a Python start-up of about 2 s).
AS_SUBPROCESS = [
    "infer onto its input, --overwrite",
    "infer onto an existing file",
    "sample onto an existing file",
    "fit onto a file",
]


def test_cli_never_replaces_input_or_existing_output(folder, monkeypatch, capsys):
    """Every way of pointing an output at something that exists is refused, untouched."""
    assert (
        main(["simulate", "--out", str(folder / "sim"), "--n-neurons", "1", "--duration", "2"])
        == 0
    )
    before = {p: digest(p) for p in folder.rglob("*") if p.is_file()}
    cases = {k: [a.format(name=folder.name) for a in v] for k, v in REFUSED.items()}
    results = run_side_by_side({k: cases[k] for k in AS_SUBPROCESS}, cwd=folder)
    monkeypatch.chdir(folder)
    capsys.readouterr()
    for name, args in cases.items():
        code = main(args)
        out, err = capsys.readouterr()
        assert (code, out, err) == results.get(name, (code, out, err)), name
        results[name] = code, out, err
    for name, (code, out, err) in results.items():
        assert code == 2, (name, code, err)
        assert err.count("\n") == 1 and err.startswith("calgan "), (name, err)
        assert "Traceback" not in err, name
        assert "trained" not in out and "wrote" not in out, (name, out)
    assert "destroy the input" in results["infer onto its input, --overwrite"][2]
    assert "--overwrite" in results["infer onto an existing file"][2]
    assert "already exists" in results["fit onto a saved model"][2]
    assert "is a file" in results["fit onto a file"][2]
    after = {p: digest(p) for p in folder.rglob("*") if p.is_file()}
    assert after == before, "a refused command changed or added a file"


@pytest.mark.slow
def test_infer_overwrite_replaces_only_the_output(folder):
    """With --overwrite the old output is replaced; the input stays byte for byte."""
    before = digest(folder / "in.csv")
    code, out, err = finish(
        calgan("infer", "--input", "in.csv", "--output", "rates.csv", "--overwrite", cwd=folder)
    )
    assert code == 0, err
    assert digest(folder / "in.csv") == before
    text = (folder / "rates.csv").read_text().splitlines()
    assert text[0] == "0,1" and len(text) == 4 and text[3].endswith(",")
    assert not list(folder.glob(".*partial"))


def test_write_rates_csv_refuses_existing_and_leaves_no_partial_file(tmp_path):
    target = tmp_path / "r.csv"
    target.write_text("old\n")
    rates = np.array([[0.1, 0.2, np.nan]])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_rates_csv(rates, ["0"], target)
    assert target.read_text() == "old\n"
    write_rates_csv(rates, ["0"], target, overwrite=True)
    again, columns = read_calcium_csv(target)
    np.testing.assert_array_equal(again, rates)
    assert columns == ["0"]
    with pytest.raises(ValueError, match="folder"):
        write_rates_csv(rates, ["0"], tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_loaders_never_change_their_files(tmp_path):
    """Reading good and bad files alike leaves them as they were."""
    from calgan_sklearn.datasets import load_spikefinder, read_calcium_csv

    files = {
        "1.train.calcium.csv": CSV,
        "1.train.spikes.csv": "0,1\n0,1\n1,0\n0,\n",
        "2.train.calcium.csv": "0;1\n0,1;0,2\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    load_spikefinder(tmp_path, datasets=1)
    read_calcium_csv(tmp_path / "1.train.calcium.csv")
    with pytest.raises(ValueError):
        load_spikefinder(tmp_path)
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before
