"""Hostile input, kind 2: no silently wrong answer; an error, a warning or a sane result."""

import warnings

import numpy as np
import pandas as pd
import pytest

from calgan_sklearn.baselines import OASIS, DerivativeDetector, WienerDeconvolution
from calgan_sklearn.datasets import load_spikefinder, read_calcium_csv, read_traces_csv

# file text -> what the one error message must say (None: the file is fine)
FILES = {
    "semicolons and decimal commas": ("0;1\n0,5;1,25\n0,7;2,5\n", "semicolons"),
    "tabs": ("0\t1\n0.5\t1.5\n", "tabs"),
    "decimal commas": ("0,1\n0,5,1,5\n0,7,2,5\n", "decimal commas"),
    "thousands separators": ('0,1\n"1,000",2\n', "has 3 field"),
    "cut off mid-line": ("0,1,2\n0.1,0.2,0.3\n0.4,0.", "cut off"),
    "short row inside": ("0,1,2\n0.1,0.2\n0.4,0.5,0.6\n", "row 2 has 2"),
    "no header row": ("0.12,0.5\n0.3,0.4\n", "no header"),
    "pandas index column": (",0,1\n0,0.1,0.2\n1,0.3,0.4\n", "index"),
    "duplicate column": ("0,0\n0.1,0.2\n", "more than once"),
    "empty column name": ("0,,2\n0.1,0.2,0.3\n", "empty"),
    "text value": ("0,1\n0.1,abc\n", "'abc'"),
    "infinite value": ("0,1\n0.1,inf\n", "infinite"),
    "gap inside a trace": ("0\n0.1\n\n0.3\n", "empty cell"),
    "header only": ("0,1\n", "no samples"),
    "empty": ("", "empty"),
    "blank lines only": ("\n\n", "empty"),
    "UTF-8 byte order mark": ("\ufeff0,1\n0.1,0.2\n", None),
    "Windows line ends": ("0,1\r\n0.1,0.2\r\n0.3,\r\n", None),
    "spaces around values": ("0, 1\n 0.1 , 0.2\n", None),
    "trailing blank line": ("0,1\n0.1,0.2\n\n", None),
}


@pytest.mark.parametrize("case", list(FILES))
def test_one_strict_reader_for_loader_and_cli(tmp_path, case):
    """``load_spikefinder`` and ``calgan infer``'s reader give the same answer or error."""
    text, match = FILES[case]
    file = tmp_path / "3.train.calcium.csv"
    file.write_bytes(text.encode("utf-8"))
    if match is None:
        X, columns = read_calcium_csv(file)
        assert columns == ["0", "1"] and X.shape[0] == 2
        assert X[0, 0] == pytest.approx(0.1) and X[1, 0] == pytest.approx(0.2)
        np.testing.assert_array_equal(load_spikefinder(tmp_path).calcium, X[:, : X.shape[1]])
        return
    errors = []
    for read in (read_calcium_csv, lambda f: load_spikefinder(f.parent)):
        with pytest.raises(ValueError, match=match) as info:
            read(file)
        assert "3.train.calcium.csv" in str(info.value)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_binary_file_is_not_read_as_numbers(tmp_path):
    file = tmp_path / "1.test.calcium.csv"
    file.write_bytes(b"PK\x03\x04\x00\x00\xff\xfe binary")
    with pytest.raises(ValueError, match="not a text CSV|binary"):
        read_calcium_csv(file)


def test_missing_final_line_break_warns(tmp_path):
    file = tmp_path / "x.csv"
    file.write_text("0,1\n0.1,0.2\n0.3,0.4")
    with pytest.warns(UserWarning, match="line break"):
        read_calcium_csv(file)


@pytest.mark.parametrize(
    "spikes, match",
    [("0\n1\n0.5\n", "fractional"), ("0\n1\n-1\n", "negative"), ("0\n1\nx\n", "'x'")],
)
def test_spikes_must_be_counts(tmp_path, spikes, match):
    (tmp_path / "2.train.calcium.csv").write_text("0\n0.1\n0.2\n")
    (tmp_path / "2.train.spikes.csv").write_text(spikes)
    with pytest.raises(ValueError, match=match):
        load_spikefinder(tmp_path)
    with pytest.raises(ValueError, match=match):
        read_traces_csv(tmp_path / "2.train.spikes.csv", "spikes")


def test_train_split_without_spikes_says_so(tmp_path):
    (tmp_path / "1.train.calcium.csv").write_text("0\n0.1\n0.2\n")
    (tmp_path / "9.train.spikes.csv").write_text("0\n0\n1\n")
    with pytest.warns(UserWarning) as record:
        data = load_spikefinder(tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert data.spikes is None
    assert "no spikes file" in messages and "9.train.spikes.csv" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (tmp_path / "9.train.spikes.csv").unlink()
        (tmp_path / "1.train.calcium.csv").rename(tmp_path / "1.test.calcium.csv")
        assert load_spikefinder(tmp_path, split="test").spikes is None  # test: no warning


def _fitted(est, rng):
    X = rng.normal(size=(2, 800))
    return est.fit(X, rng.poisson(0.05, size=X.shape).astype(float))


def test_traces_as_columns_warn(rng):
    est = _fitted(WienerDeconvolution(), rng)
    frame = pd.DataFrame(rng.normal(size=(3000, 9)))  # what pd.read_csv gives
    with pytest.warns(UserWarning, match=r"3000 traces of only 9 frames.*transpose"):
        est.predict(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert est.predict(frame.T).shape == (9, 3000)


@pytest.mark.parametrize("fs, match", [(0.033, "frame period"), (30000.0, "implausibly high")])
def test_frame_rate_in_wrong_unit_warns(rng, fs, match):
    est = _fitted(DerivativeDetector(), rng).set_params(fs=fs)
    with pytest.warns(UserWarning, match=match):
        est.predict(rng.normal(size=(2, 800)))


def test_targets_of_the_wrong_kind(rng):
    X = rng.normal(size=(2, 500))
    est = WienerDeconvolution()
    times = np.sort(rng.choice(500, size=(2, 500)), axis=1).astype(float)  # spike times
    with pytest.warns(UserWarning, match="not spike times"):
        est.fit(X, times)
    with pytest.warns(UserWarning, match="no spikes"):
        assert est.fit(X, np.zeros_like(X)).calibration_scale_ == 1.0
    for y, match in [
        (np.full(X.shape, "a"), "convert"),
        (-np.ones_like(X), "non-negative"),
        (np.ones(2), "shape"),
        (np.ones((2, 400)), "shape"),
    ]:
        with pytest.raises(ValueError, match=match):
            est.fit(X, y)


DEGENERATE = {
    "2 frames": np.array([[1.0, 2.0]]),
    "3 frames": np.array([[0.3, -0.1, 0.2]]),
    "9 frames": np.linspace(0, 1, 9)[None],
    "constant": np.ones((2, 500)),
    "zeros": np.zeros((1, 500)),
    "tiny scale": np.random.default_rng(1).normal(size=(2, 500)) * 1e-300,
    "huge scale": np.random.default_rng(2).normal(size=(2, 500)) * 1e200,
    "one step": np.r_[np.zeros(250), np.ones(250)][None],
    "3000 traces of 3 frames": np.random.default_rng(3).normal(size=(3000, 3)),
}
#: Noise-free shapes: the noise estimate is degenerate and the linear methods'
#: rates, though finite, can be large; the baselines warn that such traces look
#: noise-free (tested below) rather than answer silently.
NOISELESS = {"9 frames", "one step"}


@pytest.mark.parametrize(
    "make", [OASIS, lambda: OASIS(p=2), WienerDeconvolution, DerivativeDetector]
)
def test_degenerate_traces_error_or_sane_rates(rng, make):
    est = _fitted(make(), rng)
    for name, X in DEGENERATE.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                rates = est.predict(X)
            except ValueError as exc:
                assert "frames" in str(exc), (name, exc)
                continue
        assert rates.shape == X.shape and np.all(np.isfinite(rates)), name
        assert rates.min() >= 0, name
        if name not in NOISELESS:
            # no blow-up (short traces gave 1e11-1e14 spikes per frame before)
            assert rates.max() < 1e3, (name, rates.max())


@pytest.mark.parametrize("make", [OASIS, WienerDeconvolution, DerivativeDetector])
def test_noise_free_traces_are_named_in_a_warning(rng, make):
    est = _fitted(make(), rng)
    X = np.vstack([DEGENERATE["one step"], rng.normal(size=(1, 500))])
    with pytest.warns(UserWarning, match=r"trace\(s\) \[0\] look noise-free"):
        est.predict(X)
