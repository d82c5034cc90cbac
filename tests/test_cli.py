"""The ``calgan`` command line: subcommands run end to end on real files."""

import numpy as np
import pytest

from calgan_sklearn.cli import main
from calgan_sklearn.datasets import load_spikefinder


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("simulate", "info", "fit", "infer", "benchmark", "sample"):
        assert command in out


def test_simulate_writes_loadable_spikefinder_files(tmp_path, capsys):
    out = tmp_path / "sim"
    args = ["simulate", "--out", str(out), "--indicator", "GCaMP6s", "OGB-1"]
    assert main([*args, "--n-neurons", "3", "--duration", "20"]) == 0
    data = load_spikefinder(out)
    assert data.calcium.shape == (6, 2000)
    assert set(data.indicator) == {"GCaMP6s", "OGB-1"}
    assert np.nansum(data.spikes) > 0
    # refuses to overwrite without --overwrite, with a message instead of a traceback
    assert main([*args, "--n-neurons", "3", "--duration", "20"]) == 2
    assert "exist" in capsys.readouterr().err


def test_info_summarises_each_dataset(tmp_path, capsys):
    out = tmp_path / "sim"
    main(
        [
            "simulate",
            "--out",
            str(out),
            "--n-neurons",
            "2",
            "--duration",
            "30",
            "--noise-level",
            "3",
        ]
    )
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sim-GCaMP6s" in text and "noise_level" in text
    # noise level reported as CASCADE's nu, close to what was simulated
    lines = text.splitlines()
    header = lines[0].split()
    row = next(line.split() for line in lines if line.strip().startswith("sim-GCaMP6s"))
    assert float(row[header.index("noise_level")]) == pytest.approx(3.0, rel=0.15)


def test_info_on_missing_folder_is_a_clear_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_info_on_real_data(spikefinder_dir, capsys):
    assert main(["info", str(spikefinder_dir)]) == 0
    text = capsys.readouterr().out
    for label, indicator in (("4", "OGB-1"), ("5", "GCaMP6s"), ("6", "GCaMP5k")):
        assert any(line.split()[:2] == [label, indicator] for line in text.splitlines())
