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


@pytest.fixture(scope="module")
def simulated_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    main(["simulate", "--out", str(root / "train"), "--n-neurons", "4", "--duration", "40"])
    main(
        [
            "simulate",
            "--out",
            str(root / "test"),
            "--n-neurons",
            "2",
            "--duration",
            "20",
            "--split",
            "test",
            "--seed",
            "7",
        ]
    )
    return root


@pytest.mark.slow
def test_fit_then_infer_round_trip(simulated_folders, capsys):
    root = simulated_folders
    model = root / "model"
    args = ["--epochs", "1", "--ensemble-size", "2"]
    assert main(["fit", "--data", str(root / "train"), "--out", str(model), *args]) == 0
    assert (model / "estimator.json").is_file()
    from calgan_sklearn import load_model

    assert load_model(model).ensemble_size == 2
    calcium_csv = root / "test" / "sim-GCaMP6s.test.calcium.csv"
    rates_csv = root / "rates" / "sim-GCaMP6s.test.calcium.csv"
    assert (
        main(
            [
                "infer",
                "--model",
                str(model),
                "--input",
                str(calcium_csv),
                "--output",
                str(rates_csv),
            ]
        )
        == 0
    )
    # the rates file has the SpikeFinder layout of its input: the loader reads it,
    # with the same columns, frames and NaN padding
    calcium = load_spikefinder(root / "test", split="test")
    rates = load_spikefinder(root / "rates", split="test")
    assert rates.calcium.shape == calcium.calcium.shape
    np.testing.assert_array_equal(np.isnan(rates.calcium), np.isnan(calcium.calcium))
    np.testing.assert_array_equal(rates.neuron, calcium.neuron)
    assert (rates.calcium[np.isfinite(rates.calcium)] >= 0).all()


def test_infer_with_pretrained_keeps_nan_padding(tmp_path):
    import pandas as pd

    x = np.random.default_rng(0).normal(size=(500, 2))
    x[400:, 1] = np.nan
    pd.DataFrame(x, columns=["0", "1"]).to_csv(tmp_path / "1.test.calcium.csv", index=False)
    out = tmp_path / "rates.csv"
    assert (
        main(["infer", "--input", str(tmp_path / "1.test.calcium.csv"), "--output", str(out)]) == 0
    )
    rates = pd.read_csv(out).to_numpy()
    assert rates.shape == (500, 2)
    assert np.isnan(rates[400:, 1]).all() and np.isfinite(rates[:400]).all()
    # dF/F input: the model is told the noise level in dF/F, which changes its rates
    args = ["infer", "--input", str(tmp_path / "1.test.calcium.csv"), "--units", "dff"]
    assert main([*args, "--output", str(tmp_path / "dff.csv")]) == 0
    dff = pd.read_csv(tmp_path / "dff.csv").to_numpy()
    assert dff.shape == (500, 2) and not np.allclose(dff[:400], rates[:400])


def test_infer_rejects_a_folder_that_is_not_a_model(simulated_folders, capsys):
    calcium_csv = simulated_folders / "test" / "sim-GCaMP6s.test.calcium.csv"
    code = main(
        [
            "infer",
            "--model",
            str(simulated_folders / "test"),
            "--input",
            str(calcium_csv),
            "--output",
            str(simulated_folders / "x.csv"),
        ]
    )
    assert code == 2
    assert "not a saved estimator" in capsys.readouterr().err


def test_infer_rejects_non_numeric_input(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("0,1\n0.1,0.2\n0.3,abc\n")
    code = main(
        ["infer", "--input", str(tmp_path / "bad.csv"), "--output", str(tmp_path / "r.csv")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "'1'" in err and "abc" in err


def test_fit_needs_labelled_data(simulated_folders, capsys):
    code = main(
        [
            "fit",
            "--data",
            str(simulated_folders / "nowhere"),
            "--out",
            str(simulated_folders / "m"),
        ]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
