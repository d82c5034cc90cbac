"""Hostile input, kind 3: one clear error that names the file or trace, never a crash."""

import json
import shutil
import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest

from calgan_sklearn.baselines import OASIS
from calgan_sklearn.cli import main

PRETRAINED = files("calgan_sklearn.pretrained")  # the model files shipped with the package


def test_oasis_short_trace_is_a_clear_error_not_lapack(rng):
    est = OASIS().fit(rng.normal(size=(2, 500)), rng.poisson(0.05, (2, 500)).astype(float))
    X = rng.normal(size=(3, 500))
    X[1, 2:] = np.nan  # a 2-frame trace used to raise LinAlgError for the whole batch
    with pytest.raises(ValueError, match=r"at least 8 frames.*trace\(s\) \[1\]"):
        est.predict(X)
    assert est.predict(X[[0, 2]]).shape == (2, 500)


def _json(path):
    return json.loads((path / "estimator.json").read_text())


def _edit(key, value):
    def edit(meta):
        meta[key] = value
        return meta

    return edit


def _edit_params(**kw):
    return lambda meta: {**meta, "params": {**meta["params"], **kw}}


def _edit_state(**kw):
    return lambda meta: {**meta, "state": {**meta["state"], **kw}}


TAMPERED_JSON = {
    "newer format": (_edit("format_version", 99), "format_version"),
    "no params": (lambda m: {k: v for k, v in m.items() if k != "params"}, "lacks"),
    "params a list": (_edit("params", []), "JSON object"),
    "unknown class": (_edit("class", "os.system"), "not a"),
    "class a list": (_edit("class", ["x"]), "not a"),
    "unknown parameter": (_edit_params(evil=1), "evil"),
    "parameter out of range": (_edit_params(epochs=-1), "epochs"),
    "parameter of wrong type": (_edit_params(filters="many"), "filters"),
    "state names a method": (_edit_state(predict=1), "unexpected"),
    "state without n_iter_": (
        lambda m: {**m, "state": {k: v for k, v in m["state"].items() if k != "n_iter_"}},
        "n_iter_",
    ),
    "not an object": (lambda m: [m], "JSON object"),
    "key added by hand": (_edit("training", {}), r"unknown key\(s\) \['training'\]"),
    "metadata a list": (_edit("metadata", []), "'metadata' must be a JSON object"),
}
BROKEN_FILES = {
    "estimator.json missing": (lambda d: (d / "estimator.json").unlink(), "estimator.json is"),
    "estimator.json cut off": (
        lambda d: (d / "estimator.json").write_text((d / "estimator.json").read_text()[:200]),
        "not valid JSON",
    ),
    "estimator.json binary": (
        lambda d: (d / "estimator.json").write_bytes(b"\xff\xfe\x00"),
        "not valid JSON",
    ),
    "model missing": (lambda d: (d / "model_.keras").unlink(), "model_.keras is missing"),
    "model cut off": (
        lambda d: (d / "model_.keras").write_bytes((d / "model_.keras").read_bytes()[:50_000]),
        "model_.keras",
    ),
    "model is text": (lambda d: (d / "model_.keras").write_text("hello"), "not a Keras archive"),
    "folder is a file": (lambda d: (shutil.rmtree(d), d.write_text("x")), "is a file"),
}


def _copy_pretrained(tmp_path, name):
    target = tmp_path / name.replace(" ", "_")
    target.mkdir()
    for file in ("estimator.json", "model_.keras"):
        shutil.copy(PRETRAINED / file, target / file)
    return target


@pytest.mark.parametrize("case", list(TAMPERED_JSON) + list(BROKEN_FILES))
def test_tampered_model_folder_is_one_clear_error(tmp_path, case):
    from calgan_sklearn.models import load

    folder = _copy_pretrained(tmp_path, case)
    if case in TAMPERED_JSON:
        edit, match = TAMPERED_JSON[case]
        (folder / "estimator.json").write_text(json.dumps(edit(_json(folder))))
    else:
        edit, match = BROKEN_FILES[case]
        edit(folder)
    with pytest.raises((ValueError, FileNotFoundError), match=match) as info:
        load(folder)
    assert folder.name in str(info.value)


def test_older_file_without_a_new_parameter_still_loads(tmp_path):
    from calgan_sklearn.models import load

    folder = _copy_pretrained(tmp_path, "old")
    meta = _json(folder)
    del meta["params"]["lowpass_min_fs"]
    (folder / "estimator.json").write_text(json.dumps(meta))
    assert load(folder).lowpass_min_fs == 5.0


def test_cli_errors_are_one_line_and_come_before_training(tmp_path, capsys, monkeypatch):
    """Bad options and inputs stop every subcommand with one line, before any training."""
    model = _copy_pretrained(tmp_path, "cut")
    (model / "model_.keras").write_bytes((model / "model_.keras").read_bytes()[:1000])
    (tmp_path / "in.csv").write_text("0,1\n0.1,0.2\n0.3,0.4\n")
    (tmp_path / "1.train.calcium.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    cases = {
        "infer with a cut-off model": [
            "infer",
            "--model",
            "cut",
            "--input",
            "in.csv",
            "--output",
            "r1.csv",
        ],
        "infer with a binary input": [
            "infer",
            "--input",
            "1.train.calcium.csv",
            "--output",
            "r2.csv",
        ],
        "infer with a folder as input": ["infer", "--input", "data", "--output", "r3.csv"],
        "infer with a missing model": [
            "infer",
            "--model",
            "nope",
            "--input",
            "in.csv",
            "--output",
            "r4.csv",
        ],
        "infer at fs 0": ["infer", "--input", "in.csv", "--output", "r5.csv", "--fs", "0"],
        "info on a binary file": ["info", "1.train.calcium.csv"],
        "fit with 0 epochs": ["fit", "--data", "data", "--out", "m", "--epochs", "0"],
        "fit with ensemble 0": ["fit", "--data", "data", "--out", "m", "--ensemble-size", "0"],
        "fit with fs -5": ["fit", "--data", "data", "--out", "m", "--fs", "-5"],
        "fit with missing data": ["fit", "--data", "nope", "--out", "m"],
        "sample 0 windows": ["sample", "--out", "w.csv", "--n", "0"],
        "sample 3-frame windows": ["sample", "--out", "w.csv", "--window", "3"],
        "benchmark with --train alone": ["benchmark", "--train", "data"],
        "benchmark missing data": ["benchmark", "--data", "nope", "--out", "b"],
    }
    for name, args in cases.items():
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 2, (name, code, err)
        assert err.count("\n") == 1 and err.startswith(f"calgan {args[0]}: error: "), (name, err)
        assert "trained" not in out and "wrote" not in out, name
    assert not any((tmp_path / f).exists() for f in ("m", "w.csv", "b", "r1.csv"))
    # the same as a user runs it: one line, no traceback, exit status 2
    proc = subprocess.run(
        [sys.executable, "-m", "calgan_sklearn.cli", *cases["infer with a cut-off model"]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "model_.keras" in proc.stderr
