"""The ``calgan`` command line: subcommands run end to end on real files."""

import importlib.util

import numpy as np
import pytest

from calgan_sklearn.cli import main
from calgan_sklearn.datasets import load_spikefinder


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("simulate", "info", "fit", "calibrate", "infer", "benchmark", "sample"):
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
    args = ["--epochs", "1", "--ensemble-size", "2", "--distill-epochs", "1"]
    assert main(["fit", "--data", str(root / "train"), "--out", str(model), *args]) == 0
    assert (model / "estimator.json").is_file()
    from calgan_sklearn import load_model

    fitted = load_model(model)
    assert (fitted.ensemble_size, fitted.distill_epochs) == (2, 1)
    assert fitted.model_.output_shape[-1] == 1  # the ensemble distilled into one network
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
    # the silent floor is the model's business by default; 'none' keeps raw rates
    assert main([*args, "--output", str(tmp_path / "raw.csv"), "--floor-percentile", "none"]) == 0
    raw = pd.read_csv(tmp_path / "raw.csv").to_numpy()
    assert np.all(raw[:400] >= dff[:400] - 1e-7) and raw[:400].sum() > dff[:400].sum()
    with pytest.raises(SystemExit):
        main([*args, "--output", str(tmp_path / "x.csv"), "--floor-percentile", "100"])
    # --count-scale multiplies the rates (a factor from calibrate_counts)
    assert main([*args, "--output", str(tmp_path / "x2.csv"), "--count-scale", "2.5"]) == 0
    np.testing.assert_allclose(
        pd.read_csv(tmp_path / "x2.csv").to_numpy()[:400], 2.5 * dff[:400], rtol=1e-5, atol=1e-7
    )
    for bad in ("0", "-1", "nan", "x"):
        with pytest.raises(SystemExit):
            main([*args, "--output", str(tmp_path / "x.csv"), "--count-scale", bad])


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


# -- suite2p / CaImAn / NWB / .npy input (tests/test_formats.py writes the files) --------
def test_info_reads_suite2p_caiman_nwb_and_npy(tmp_path, capsys):
    pytest.importorskip("pynwb")
    from test_formats import make_caiman, make_nwb, make_suite2p

    make_suite2p(tmp_path / "s2p")
    make_caiman(tmp_path / "cnm.hdf5")
    make_nwb(tmp_path / "rec.nwb")
    np.save(tmp_path / "traces.npy", np.ones((2, 300)))
    paths = [str(tmp_path / n) for n in ("s2p", "cnm.hdf5", "rec.nwb", "traces.npy")]
    assert main(["info", *paths, "--fs", "20"]) == 0
    text = capsys.readouterr().out
    for name in ("s2p", "cnm", "rec", "traces"):
        assert any(line.split()[:1] == [name] for line in text.splitlines()), text
    assert main(["info", str(tmp_path / "traces.npy")]) == 2
    assert "--fs" in capsys.readouterr().err


@pytest.mark.slow
def test_infer_suite2p_to_npy_and_nwb_to_nwb(tmp_path, capsys):
    pytest.importorskip("pynwb")
    from test_formats import _digest, make_nwb, make_suite2p

    make_suite2p(tmp_path / "s2p")
    out = tmp_path / "rates.npy"
    assert main(["infer", "--input", str(tmp_path / "s2p"), "--output", str(out)]) == 0
    rates = np.load(out)
    assert rates.shape == (4, 600) and rates.dtype == np.float32
    assert np.isfinite(rates[[0, 2]]).all() and np.isnan(rates[[1, 3]]).all()
    assert (rates[[0, 2]] >= 0).all()
    assert main(["infer", "--input", str(tmp_path / "s2p"), "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # the same traces read in chunks give the same rates
    import calgan_sklearn.cli as cli

    old, cli._INFER_CHUNK = cli._INFER_CHUNK, 1
    try:
        args = ["infer", "--input", str(tmp_path / "s2p"), "--output", str(out)]
        assert main([*args, "--overwrite"]) == 0
    finally:
        cli._INFER_CHUNK = old
    # (to float rounding: a batch of one trace or of two)
    atol = 1e-5 * np.nanmax(rates)
    np.testing.assert_allclose(np.load(out), rates, rtol=1e-5, atol=atol, equal_nan=True)
    # the fast packaged model (how close it is to the default: test_inference.py)
    fast = tmp_path / "fast.npy"
    args = ["infer", "--model", "pretrained-fast", "--input", str(tmp_path / "s2p")]
    assert main([*args, "--output", str(fast)]) == 0
    quick = np.load(fast)
    np.testing.assert_array_equal(np.isnan(quick), np.isnan(rates))
    assert (quick[[0, 2]] >= 0).all()
    assert not np.allclose(quick, rates, equal_nan=True)  # another network answered

    source = tmp_path / "rec.nwb"
    make_nwb(source)
    before = _digest(source)
    copy = tmp_path / "with_rates.nwb"
    assert main(["infer", "--input", str(source), "--output", str(copy)]) == 0
    assert _digest(source) == before
    from calgan_sklearn.datasets import load_nwb

    written = load_nwb(copy, series="inferred_spike_rates")
    assert written.calcium.shape == (4, 600) and (written.calcium >= 0).all()
    assert list(written.neuron) == ["10", "11", "12", "13"]
    assert main(["infer", "--input", str(source), "--output", str(copy)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert _digest(source) == before
    assert main(["infer", "--input", str(source), "--output", str(source), "--overwrite"]) == 2
    assert "input" in capsys.readouterr().err
    assert _digest(source) == before


def test_infer_npy_needs_fs_and_nwb_output_needs_nwb_input(tmp_path, capsys):
    np.save(tmp_path / "traces.npy", np.random.default_rng(0).normal(size=(2, 300)))
    args = ["infer", "--input", str(tmp_path / "traces.npy")]
    assert main([*args, "--output", str(tmp_path / "r.npy")]) == 2
    assert "--fs" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "r.nwb"), "--fs", "30"]) == 2
    assert "NWB --input" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "r.txt"), "--fs", "30"]) == 2
    assert "suffix" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "r.csv"), "--fs", "30"]) == 0
    assert not list(tmp_path.glob(".*partial"))


def test_infer_shows_neurons_per_second_on_a_terminal_unless_told_not_to(tmp_path, monkeypatch):
    import io
    import sys

    import pandas as pd

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x = np.random.default_rng(0).normal(size=(300, 3))
    pd.DataFrame(x, columns=["0", "1", "2"]).to_csv(tmp_path / "1.test.calcium.csv", index=False)
    args = ["infer", "--input", str(tmp_path / "1.test.calcium.csv")]
    for extra, shown in [([], True), (["--no-progress"], False)]:
        err = Terminal()
        monkeypatch.setattr(sys, "stderr", err)
        out = tmp_path / f"rates{len(extra)}.csv"
        assert main([*args, "--output", str(out), *extra]) == 0
        assert ("3/3" in err.getvalue() and "neuron/s" in err.getvalue()) == shown


# -- calgan sample ------------------------------------------------------------------------
#: The smallest whole-trace GAN: the CLI's --param options (tests/_presets.py TINY_TRACE_GAN).
TINY_GAN_PARAMS = [
    *("--param", "filters=4", "--param", "kernel_size=3", "--param", "depth=1"),
    *("--param", "latent_dim=2", "--param", "batch_size=32", "--epochs", "1"),
]


@pytest.fixture(scope="module")
def spike_csvs(tmp_path_factory, cascade_dir):
    """Two DS18 neurons' spikes and calcium at 15 Hz as SpikeFinder CSVs (one padded)."""
    import warnings

    from calgan_sklearn.datasets import load_folder, write_rates_csv

    root = tmp_path_factory.mktemp("sample")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_folder([cascade_dir / "DS18-R-CaMP-m-CA3"], fs=15.0)
    busy = np.argsort(-np.nansum(data.spikes, axis=1))[:2]
    spikes, calcium = data.spikes[busy, :400].copy(), data.calcium[busy, :400].copy()
    spikes[1, 300:], calcium[1, 300:] = np.nan, np.nan
    write_rates_csv(spikes, ["n1", "n2"], root / "spikes.csv")
    write_rates_csv(calcium, ["n1", "n2"], root / "calcium.csv")
    return root, spikes, calcium


@pytest.mark.realdata
def test_sample_renders_a_spike_csv_in_the_style_of_a_folder(spike_csvs, cascade_dir, capsys):
    pytest.importorskip("matplotlib")
    from calgan_sklearn.datasets import read_calcium_csv

    root, spikes, calcium = spike_csvs
    args = ["sample", "--data", str(cascade_dir / "DS18-R-CaMP-m-CA3")]
    args += ["--spikes", str(root / "spikes.csv"), "--fs", "15", "--crop-seconds", "2"]
    args += ["--calcium", str(root / "calcium.csv"), "--seed", "3", *TINY_GAN_PARAMS]
    out = root / "rendered.csv"
    extra = ["--figure", str(root / "fig.png"), "--save-model", str(root / "gan")]
    assert main([*args, "--out", str(out), *extra]) == 0
    rendered, columns = read_calcium_csv(out)
    # the spike CSV's layout: its columns, frames and NaN padding
    assert columns == ["n1", "n2"] and rendered.shape == spikes.shape
    np.testing.assert_array_equal(np.isnan(rendered), np.isnan(spikes))
    assert (root / "fig.png").stat().st_size > 10_000
    assert (root / "gan" / "estimator.json").is_file()
    # the saved GAN renders the same calcium without training again; its frame rate is used
    again = root / "again.csv"
    reuse = ["sample", "--model", str(root / "gan"), "--spikes", str(root / "spikes.csv")]
    reuse += ["--calcium", str(root / "calcium.csv"), "--seed", "3"]
    assert main([*reuse, "--out", str(again)]) == 0
    # float32 rendering: values near zero differ in the last bits (oneDNN's order)
    again_calcium = read_calcium_csv(again)[0]
    np.testing.assert_allclose(again_calcium, rendered, rtol=1e-5, atol=1e-6, equal_nan=True)
    capsys.readouterr()
    assert main([*reuse, "--out", str(again), "--fs", "30", "--overwrite"]) == 2
    assert "renders at 15 Hz but --fs is 30" in capsys.readouterr().err
    assert main([*reuse, "--out", str(again)]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_sample_spike_csv_errors_before_training(tmp_path, capsys):
    (tmp_path / "spikes.csv").write_text("a,b\n0,1\n2,\n")
    (tmp_path / "negative.csv").write_text("a,b\n0,1\n-1,\n")
    (tmp_path / "infinite.csv").write_text("a,b\n0,1\ninf,\n")
    (tmp_path / "calcium.csv").write_text("a\n0.1\n0.2\n")
    run = ["sample", "--out", str(tmp_path / "out.csv")]
    spikes = ["--spikes", str(tmp_path / "spikes.csv")]
    cases = {
        "--fs is required": [*spikes],
        "apply to rendering a spike-train CSV": ["--crop-seconds", "2"],
        "--figure compares": [*spikes, "--fs", "30", "--figure", str(tmp_path / "f.png")],
        "the suffix chooses the format": [
            *spikes,
            *("--fs", "30", "--calcium", str(tmp_path / "calcium.csv")),
            *("--figure", str(tmp_path / "f.txt")),
        ],
        "negative value": ["--spikes", str(tmp_path / "negative.csv"), "--fs", "30"],
        "infinite": ["--spikes", str(tmp_path / "infinite.csv"), "--fs", "30"],
        "has 1 column(s) of 2 frames": [
            *spikes,
            "--fs",
            "30",
            "--calcium",
            str(tmp_path / "calcium.csv"),
        ],
        "give either --model or the training options": [
            *spikes,
            "--model",
            str(tmp_path),
            "--data",
            str(tmp_path),
        ],
        "not a saved estimator": [*spikes, "--model", str(tmp_path)],
        "valid names": [*spikes, "--fs", "30", "--param", "fitlers=4"],
        "expected NAME=VALUE": [*spikes, "--fs", "30", "--param", "filters"],
        "--spikes": ["--spikes", str(tmp_path / "nowhere.csv"), "--fs", "30"],
        "positive number": [*spikes, "--fs", "0"],
    }
    if importlib.util.find_spec("matplotlib") is None:
        cases["pip install calgan_sklearn[plot]"] = cases.pop("the suffix chooses the format")
    for message, extra in cases.items():
        assert main([*run, *extra]) == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (message, err)
    assert not (tmp_path / "out.csv").exists()


def test_sample_windows_still_written_without_spikes(tmp_path):
    from calgan_sklearn.datasets import read_calcium_csv

    out = tmp_path / "windows.csv"
    tiny = ["--param", "filters=4", "--param", "depth=1", "--param", "latent_dim=4"]
    args = ["sample", "--out", str(out), "--n", "4", "--window", "16", "--epochs", "1", *tiny]
    assert main([*args, "--save-model", str(tmp_path / "gan")]) == 0
    windows, _ = read_calcium_csv(out)
    assert windows.shape == (4, 16) and np.isfinite(windows).all()
    from calgan_sklearn import load_model

    assert load_model(tmp_path / "gan").conditioning_ == "label"


@pytest.mark.realdata
def test_calibrate_on_three_neurons_then_infer_the_others(cascade_dir, tmp_path, capsys):
    from calgan_sklearn import load_model
    from calgan_sklearn.datasets import load_cascade
    from calgan_sklearn.evaluation import score_rates

    source = cascade_dir / "DS12-GCaMP6s-m-V1-neuropil-corrected"  # 6 neurons, 158 Hz
    files = sorted(source.glob("*.mat"))
    for folder, part in (("gt", files[:3]), ("rest", files[3:])):
        (tmp_path / folder).mkdir()
        for f in part:  # links, not copies, of the shared files
            (tmp_path / folder / f.name).symlink_to(f)
    fs = "158.3"
    model = tmp_path / "model"
    args = ["calibrate", "--data", str(tmp_path / "gt"), "--fs", fs, "--out", str(model)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "count_scale =" in out and f"--fs {fs} --units dff" in out  # CASCADE: dF/F
    calibrated = load_model(model)
    assert calibrated.count_scale != 1.0 and calibrated.timing_fs_ == 158.3
    # the other neurons, inferred from a plain array as a user's recording would be
    rest = load_cascade(tmp_path / "rest", fs=158.3)
    np.save(tmp_path / "rest.npy", rest.calcium.astype(np.float32))
    scores = {}
    for name in ("pretrained", str(model)):
        out = tmp_path / f"rates{len(scores)}.npy"
        infer = ["infer", "--model", name, "--input", str(tmp_path / "rest.npy"), "--fs", fs]
        assert main([*infer, "--units", "dff", "--output", str(out)]) == 0
        scores[name] = score_rates(rest.spikes, np.load(out), 158.3, neuron=rest.neuron)
    before, after = scores["pretrained"], scores[str(model)]
    assert after["correlation"] > before["correlation"] + 0.02, scores
    assert abs(after["bias"]) < abs(before["bias"]), scores
    # a .npy is read in arbitrary units unless told: the dF/F count scale warns
    capsys.readouterr()
    infer = ["infer", "--model", str(model), "--input", str(tmp_path / "rest.npy"), "--fs", fs]
    assert main([*infer, "--output", str(tmp_path / "rates_arb.npy")]) == 0
    assert "calgan infer --units dff" in capsys.readouterr().err
    # a factor given on the command line replaces the calibration: nothing to warn of
    scaled = [*infer, "--count-scale", "0.5", "--output", str(tmp_path / "rates_c.npy")]
    assert main(scaled) == 0
    assert "--units dff" not in capsys.readouterr().err
    # --no-timing on a model with a timing calibration says that it keeps it
    again = [*args[:-1], str(tmp_path / "m5"), "--model", str(model), "--no-timing"]
    assert main(again) == 0
    assert "earlier timing calibration (made at 158.3 Hz) is kept" in capsys.readouterr().out
    assert load_model(tmp_path / "m5").timing_fs_ == 158.3
    # refused before anything is loaded or written
    assert main([*args, "--no-counts", "--no-timing", "--out", str(tmp_path / "m2")]) == 2
    assert "nothing to calibrate" in capsys.readouterr().err
    assert main(args) == 2  # the model exists: --overwrite replaces it
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--fs", "5", "--out", str(tmp_path / "m3")]) == 2
    assert "7.5-1000 Hz" in capsys.readouterr().err
    # at 20 Hz or less there is no timing to learn: the counts alone are calibrated
    low = [*args[:-1], str(tmp_path / "m4")]
    low[low.index(fs)] = "15"
    assert main(low) == 0
    assert "no timing to calibrate at 15 Hz" in capsys.readouterr().out
    assert not hasattr(load_model(tmp_path / "m4"), "timing_coef_")


def test_calibrate_needs_ground_truth(tmp_path, capsys):
    np.save(tmp_path / "traces.npy", np.zeros((2, 100), np.float32))
    args = ["calibrate", "--data", str(tmp_path / "traces.npy"), "--fs", "30"]
    assert main([*args, "--out", str(tmp_path / "m")]) == 2
    assert "needs ground truth" in capsys.readouterr().err
    missing = ["calibrate", "--data", str(tmp_path / "nowhere"), "--fs", "30", "--out", "x"]
    assert main(missing) == 2
    assert "does not exist" in capsys.readouterr().err
