import numpy as np
import pandas as pd
import pytest
from scipy.io import loadmat, savemat
from sklearn.model_selection import LeaveOneGroupOut

from calgan_sklearn.datasets import (
    dataset_weights,
    load_cascade,
    load_spikefinder,
    make_calcium,
    make_windows,
    write_spikefinder,
)
from calgan_sklearn.signal import trace_lengths

# ----------------------------------------------------------------- SpikeFinder, real data


@pytest.fixture(scope="module")
def spikefinder(spikefinder_dir):
    return load_spikefinder(spikefinder_dir)


@pytest.mark.realdata
def test_load_spikefinder_real(spikefinder, spikefinder_dir):
    data = spikefinder
    assert data.calcium.shape == data.spikes.shape == (24, 27763)
    assert data.fs == 100.0
    assert sorted(set(data.dataset)) == ["4", "5", "6"]
    assert dict(zip(data.dataset, data.indicator)) == {
        "4": "OGB-1",
        "5": "GCaMP6s",
        "6": "GCaMP5k",
    }
    assert len(set(data.neuron)) == 24 and data.neuron[0] == "4/0"
    assert set(data.units) == {"arbitrary"}  # SpikeFinder's calcium is not dF/F
    raw = pd.read_csv(spikefinder_dir / "6.train.spikes.csv")
    i = np.flatnonzero(data.neuron == "6/2")[0]
    np.testing.assert_array_equal(trace_lengths(data.calcium)[i], raw["2"].notna().sum())
    assert np.nansum(data.spikes[data.dataset == "6"]) == np.nansum(raw.to_numpy())
    # the NaN padding of the shorter datasets is at the end, calcium and spikes alike
    np.testing.assert_array_equal(np.isnan(data.calcium), np.isnan(data.spikes))
    assert list(LeaveOneGroupOut().split(data.calcium, groups=data.dataset))


@pytest.mark.realdata
def test_load_spikefinder_select_and_frame(spikefinder_dir):
    data = load_spikefinder(spikefinder_dir, datasets=[5], as_frame=True)
    assert set(data.dataset) == {"5"} and data.calcium.shape == (9, 16919)
    assert data.frame.shape[0] == np.isfinite(data.calcium).sum()
    assert list(data.frame.columns) == [
        "dataset",
        "neuron",
        "indicator",
        "frame",
        "time",
        "calcium",
        "spikes",
    ]
    assert data.frame.spikes.sum() == np.nansum(data.spikes)


@pytest.mark.realdata
def test_load_spikefinder_missing_dataset_lists_present(spikefinder_dir):
    with pytest.raises(ValueError, match=r"\['4', '5', '6'\]"):
        load_spikefinder(spikefinder_dir, datasets=[4, 9])
    with pytest.raises(ValueError, match="test"):
        load_spikefinder(spikefinder_dir, split="test")


@pytest.mark.realdata
def test_spikefinder_round_trip_is_lossless(spikefinder, tmp_path):
    write_spikefinder(spikefinder, tmp_path)
    again = load_spikefinder(tmp_path)
    np.testing.assert_array_equal(again.calcium, spikefinder.calcium)
    np.testing.assert_array_equal(again.spikes, spikefinder.spikes)
    for key in ("dataset", "neuron", "indicator"):
        np.testing.assert_array_equal(again[key], spikefinder[key])
    assert "," in (tmp_path / "4.train.spikes.csv").read_text().splitlines()[1]
    assert "." not in (tmp_path / "4.train.spikes.csv").read_text()  # integer counts
    with pytest.raises(FileExistsError):
        write_spikefinder(spikefinder, tmp_path)


# ----------------------------------------------------------------- SpikeFinder, bad files


def _write(folder, name, text):
    (folder / name).write_text(text)


def test_write_load_simulated_with_padding(tmp_path):
    sim = make_calcium(n_neurons=3, duration=2.0, random_state=0)
    sim.calcium[1, 150:] = np.nan
    sim.spikes[1, 150:] = np.nan
    write_spikefinder((sim.calcium, sim.spikes), tmp_path, split="test", dataset=3)
    data = load_spikefinder(tmp_path, split="test")
    np.testing.assert_array_equal(data.calcium, sim.calcium)
    np.testing.assert_array_equal(data.spikes, sim.spikes)
    assert data.indicator.tolist() == ["GCaMP6s"] * 3


def test_write_spikefinder_replaces_all_or_nothing(tmp_path):
    """An existing file stops the whole write; no file is half-written or left partial."""
    sim = make_calcium(n_neurons=2, duration=2.0, random_state=0)
    (tmp_path / "3.train.spikes.csv").write_text("old\n")
    with pytest.raises(FileExistsError, match="3.train.spikes.csv.*overwrite=True"):
        write_spikefinder(sim, tmp_path, dataset=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.train.spikes.csv"]
    write_spikefinder(sim, tmp_path, dataset=3, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "3.train.calcium.csv",
        "3.train.spikes.csv",
    ]
    np.testing.assert_array_equal(load_spikefinder(tmp_path).spikes, sim.spikes)


def test_dataset_weights_balance_datasets_of_different_lengths():
    calcium = np.ones((3, 10))
    calcium[2, 4:] = np.nan  # dataset "b": one trace of 4 frames
    weights = dataset_weights(calcium, ["a", "a", "b"])
    np.testing.assert_allclose(weights, [1 / 20, 1 / 20, 1 / 4])
    with pytest.raises(ValueError, match="one dataset label per trace"):
        dataset_weights(calcium, ["a", "b"])


def test_unlabeled_split_gives_spikes_none(tmp_path):
    _write(tmp_path, "1.test.calcium.csv", "0,1\n0.5,1.5\n0.25,\n")
    data = load_spikefinder(tmp_path, split="test")
    assert data.spikes is None
    np.testing.assert_array_equal(data.calcium, [[0.5, 0.25], [1.5, np.nan]])
    with pytest.raises(ValueError, match="1.test.spikes.csv"):
        load_spikefinder(tmp_path, split="test", require_spikes=True)


@pytest.mark.parametrize(
    "calcium, spikes, match",
    [
        ("", None, "empty"),
        ("0,1\n", None, "no samples"),
        ("0,1\n0.1,abc\n", None, r"column '1', row 2 holds 'abc'"),
        ("0\n0.1\n\n0.3\n", None, r"column '0' has an empty cell"),
        ("0,1\n0.1,0.2\n", "0\n1\n", "same neurons"),
        ("0\n0.1\n0.2\n", "0\n1\n", "2 samples.*1"),
        ("0\n0.1\n0.2\n", "0\n1\n-1\n", "negative"),
        ("0\n0.1\n0.2\n", "0\n1\n0.5\n", "fractional"),
    ],
)
def test_bad_spikefinder_files_name_file_and_problem(tmp_path, calcium, spikes, match):
    _write(tmp_path, "2.train.calcium.csv", calcium)
    if spikes is not None:
        _write(tmp_path, "2.train.spikes.csv", spikes)
    with pytest.raises(ValueError, match=match) as info:
        load_spikefinder(tmp_path)
    assert "2.train." in str(info.value)


def test_all_nan_column_is_dropped_with_warning(tmp_path):
    _write(tmp_path, "2.train.calcium.csv", "0,1,2\n0.1,,0.3\n0.2,,0.4\n")
    _write(tmp_path, "2.train.spikes.csv", "0,1,2\n0,,1\n1,,0\n")
    with pytest.warns(UserWarning, match=r"\['1'\]"):
        data = load_spikefinder(tmp_path)
    assert data.neuron.tolist() == ["2/0", "2/2"]
    np.testing.assert_array_equal(data.spikes, [[0, 1], [1, 0]])


def test_write_spikefinder_needs_file_name_labels(tmp_path):
    with pytest.raises(ValueError, match="dataset"):
        write_spikefinder(np.zeros((2, 5)), tmp_path)
    with pytest.raises(ValueError, match="file names"):
        write_spikefinder(np.zeros((2, 5)), tmp_path, dataset="a.b")


# ----------------------------------------------------------------- CASCADE


@pytest.fixture(scope="module")
def cascade_native(cascade_dir):
    folder = cascade_dir / "DS09-GCaMP6f-m-V1"
    return folder, load_cascade(folder)


def _events_in_frames(events_s, first, last, fs):
    return int(np.sum((events_s >= first - 0.5 / fs) & (events_s < last + 0.5 / fs)))


@pytest.mark.realdata
def test_load_cascade_native_rate(cascade_native):
    folder, data = cascade_native
    files = sorted(folder.glob("*.mat"))
    assert data.fs == pytest.approx(60.06, abs=0.1)
    assert data.calcium.shape == data.spikes.shape
    assert set(data.indicator) == {"GCaMP6f"} and set(data.dataset) == {folder.name}
    assert set(data.units) == {"dff"}
    assert "DS09-GCaMP6f-m-V1/CAttached_Chen2013_GC6f_cell1" in set(data.neuron)
    assert len(set(data.neuron)) == len(files)
    # every trace is one trial, with the file's frames and dF/F values unchanged
    trial = loadmat(files[0])["CAttached"][0][0]
    first = np.flatnonzero(data.filename == str(files[0]))[0]
    dff = np.asarray(trial["fluo_mean"][0, 0], float).ravel()
    np.testing.assert_array_equal(data.calcium[first, : len(dff)], dff)
    assert trace_lengths(data.calcium)[first] == len(dff)


@pytest.mark.realdata
def test_load_cascade_resampled_preserves_every_spike(cascade_dir):
    folder = cascade_dir / "DS14-GCaMP6s-m-V1"
    fs = 25.0
    data = load_cascade(folder, fs=fs)
    assert data.fs == fs
    lengths = trace_lengths(data.calcium)
    expected = 0
    for i, f in enumerate(data.filename):
        trial = loadmat(f)["CAttached"][0][data.trial[i]]
        times = np.asarray(trial["fluo_time"][0, 0], float).ravel()
        events = np.asarray(trial["events_AP"][0, 0], float).ravel() / 1e4
        events = events[np.isfinite(events)]
        t0 = np.nanmin(times)
        assert lengths[i] == pytest.approx((np.nanmax(times) - t0) * fs, abs=1.5)
        expected += _events_in_frames(events, t0, t0 + (lengths[i] - 1) / fs, fs)
    assert np.nansum(data.spikes) == expected
    # and as many as at the native rate, give or take spikes at the very end
    native = load_cascade(folder)
    assert abs(np.nansum(native.spikes) - expected) <= len(data.filename)


@pytest.mark.realdata
def test_load_cascade_mixed_rates_needs_fs(cascade_dir):
    with pytest.raises(ValueError, match=r"pass fs="):
        load_cascade(cascade_dir / "DS12-GCaMP6s-m-V1-neuropil-corrected")


@pytest.mark.realdata
def test_load_all_cascade_folders(cascade_30hz, cascade_dir):
    data = cascade_30hz
    assert any("outside the recording" in m for m in data.load_warnings)
    folders = sorted(p.name for p in cascade_dir.iterdir() if p.is_dir())
    assert sorted(set(data.dataset)) == folders
    assert set(data.indicator) == {
        "OGB-1",
        "Cal-520",
        "GCaMP5k",
        "GCaMP6f",
        "GCaMP6s",
        "GCaMP7f",
        "jGCaMP8m",
        "R-CaMP",
        "jRCaMP1a",
        "jRGECO1a",
    }
    n_files = sum(len(list((cascade_dir / f).glob("*.mat"))) for f in folders)
    assert len(set(data.neuron)) == n_files
    np.testing.assert_array_equal(np.isnan(data.calcium), np.isnan(data.spikes))
    lengths = trace_lengths(data.calcium)
    assert lengths.min() >= 2
    # about 36 hours of recordings in the 20 folders (README table: 2147 min)
    assert 33 < lengths.sum() / data.fs / 3600 < 38


def _cattached(path, times, dff, events):
    trial = {
        "fluo_time": np.asarray(times),
        "fluo_mean": np.asarray(dff),
        "events_AP": np.asarray(events),
    }
    folder = path / "DS99-GCaMP8m-m-V1"
    folder.mkdir(exist_ok=True)
    savemat(folder / "CAttached_test_mini.mat", {"CAttached": np.array([trial])})
    return folder


def test_cascade_nan_frames_and_spikes_are_dropped_with_counts(tmp_path):
    times = np.arange(200) / 20.0
    times[50] = np.nan
    events = np.array([0.5, 1.0, np.nan, 3.3, 50.0]) * 1e4
    folder = _cattached(tmp_path, times, np.sin(np.arange(200.0)), events)
    with pytest.warns(UserWarning) as record:
        data = load_cascade(folder)
    messages = " ".join(str(w.message) for w in record)
    assert "CAttached_test_mini.mat, trial 0: dropped 1 frame(s) with NaN" in messages
    assert "dropped 1 NaN spike time(s)" in messages
    assert "dropped 1 spikes outside" in messages
    assert data.calcium.shape == (1, 199) and np.nansum(data.spikes) == 3
    assert data.indicator[0] == "jGCaMP8m" and data.fs == pytest.approx(20.0)
    with pytest.warns(UserWarning):
        resampled = load_cascade(folder, fs=7.0)
    assert np.nansum(resampled.spikes) == 3


def test_cascade_file_without_fields(tmp_path):
    savemat(tmp_path / "x.mat", {"other": np.zeros(3)})
    with pytest.raises(ValueError, match=r"x\.mat has no 'CAttached'"):
        load_cascade(tmp_path / "x.mat")
    savemat(tmp_path / "y.mat", {"CAttached": np.array([{"fluo_time": np.zeros(3)}])})
    skipped = pytest.warns(UserWarning, match=r"skipped .*y\.mat, trial 0: no fluorescence")
    with skipped, pytest.raises(ValueError, match="no usable trials"):
        load_cascade(tmp_path / "y.mat")
    with pytest.raises(ValueError, match="no .mat files"):
        load_cascade(_empty(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        load_cascade(tmp_path / "missing")


def _cattached_trials(path, trials, name="CAttached_quirks_mini.mat"):
    folder = path / "DS98-GCaMP6f-m-V1"
    folder.mkdir(exist_ok=True)
    arr = np.empty(len(trials), dtype=object)
    arr[:] = trials
    savemat(folder / name, {"CAttached": arr})
    return folder


def _trial(times, dff, events=(0.5e4,)):
    return {
        "fluo_time": np.asarray(times, float),
        "fluo_mean": np.asarray(dff, float),
        "events_AP": np.asarray(events, float),
    }


def test_cascade_quirks_are_skipped_or_repaired_with_file_and_trial(tmp_path):
    """The quirks of real ground-truth files (see ../shared/data/README.md)."""
    t = np.arange(100) / 10.0
    dff = np.cos(np.arange(100.0))
    repeated = np.concatenate([t, [t[-1]]])  # last frame time repeats, as in DS24/25/27
    trials = [
        _trial(t, dff),  # 0: clean
        _trial(np.zeros(0), np.zeros(0), np.zeros(0)),  # 1: no fluorescence (DS03)
        _trial(t[:60], dff),  # 2: fluo_mean longer than fluo_time (DS04)
        _trial(repeated, np.concatenate([dff, [dff[-1]]])),  # 3: repeated frame time
        _trial(t[::-1], dff),  # 4: times go backwards: cannot be repaired
        _trial(t, dff[:50]),  # 5: fluo_time longer than fluo_mean: alignment unknown
    ]
    folder = _cattached_trials(tmp_path, trials)
    with pytest.warns(UserWarning) as record:
        data = load_cascade(folder)
    messages = [str(w.message) for w in record]

    def said(trial, text):
        return any(f"quirks_mini.mat, trial {trial}" in m and text in m for m in messages)

    assert said(1, "skipped") and said(1, "no fluorescence")
    assert said(2, "repaired") and said(2, "kept the first 60")
    assert said(3, "repaired") and said(3, "1 frame(s) whose time repeats")
    assert said(4, "skipped") and said(4, "goes backwards")
    assert said(5, "skipped") and said(5, "fluo_mean only 50")
    assert not any("trial 0" in m for m in messages)
    assert data.trial.tolist() == [0, 2, 3]
    lengths = trace_lengths(data.calcium)
    assert lengths.tolist() == [100, 60, 100]
    # values stay on their own frames: nothing shifted by a repair
    np.testing.assert_array_equal(data.calcium[1, :60], dff[:60])
    np.testing.assert_array_equal(data.calcium[2, :100], dff)
    assert np.nansum(data.spikes) == 3


def test_cascade_times_in_milliseconds_warn(tmp_path):
    folder = _cattached_trials(tmp_path, [_trial(np.arange(100) * 33.0, np.ones(100))])
    with pytest.warns(UserWarning, match=r"trial 0: frame times imply 0.0303 Hz.*milliseconds"):
        load_cascade(folder)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "folder, file, trial, text",
    [
        ("DS03-Cal520-m-S1", "CAttached_S1_Cal520_cell5_mini.mat", 1, "no fluorescence"),
        ("DS04-OGB1-zf-pDp", "CAttached_OGB_pDp_190115_Fish2_cellA_mini.mat", 0, "first 468"),
        ("DS21-R-CaMP-m-S1", "CAttached_S1_cell2_mini.mat", 1, "50 frame(s) with NaN"),
        ("DS27-GCaMP6f-m-PV-vivo-V1", "CAttachedPVCamp12_Cell01_VR02_mini.mat", 0, "repeats"),
    ],
)
def test_cascade_real_quirky_files_load(cascade_dir, folder, file, trial, text):
    with pytest.warns(UserWarning) as record:
        data = load_cascade(cascade_dir / folder / file)
    assert any(
        f"{file}, trial {trial}" in str(w.message) and text in str(w.message) for w in record
    )
    assert len(data.calcium) >= 1 and np.isfinite(data.calcium[:, 0]).all()
    np.testing.assert_array_equal(np.isnan(data.calcium), np.isnan(data.spikes))


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


# ----------------------------------------------------------------- windows


def test_make_windows_targets_and_padding():
    calcium = np.arange(20.0).reshape(2, 10)
    calcium[1, 7:] = np.nan
    spikes = np.zeros((2, 10))
    spikes[0, 5] = 2
    spikes[1, 2] = 1
    spikes[1, 7:] = np.nan
    X, y, g = make_windows(calcium, spikes, window=4, stride=1, target="count", groups=["a", "b"])
    # trace 0: starts 0..6, trace 1 (7 frames): starts 0..3
    assert X.shape == (11, 4) and not np.isnan(X).any()
    assert g.tolist() == ["a"] * 7 + ["b"] * 4
    np.testing.assert_array_equal(X[0], [0, 1, 2, 3])
    # centre frame of a 4-window is its frame (4 - 1) // 2 = 1
    assert y.tolist() == [0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0]
    _, yc, _ = make_windows(calcium, spikes, window=4, stride=1, target="center")
    assert set(yc.tolist()) == {0, 1} and yc.sum() == 2
    _, ys, _ = make_windows(calcium, spikes, window=4, stride=3, target="subwindow")
    assert ys.shape == (5, 4)  # starts 0, 3, 6 and 0, 3
    Xd, yd, gd = make_windows(calcium, spikes, window=4)  # default stride 1 (= 4 // 4)
    assert Xd.shape == (11, 4) and gd.tolist() == [0] * 7 + [1] * 4
    _, none, _ = make_windows(calcium, None, window=4)
    assert none is None


def test_make_windows_bad_input():
    with pytest.raises(ValueError, match="target"):
        make_windows(np.zeros((1, 10)), target="peak")
    with pytest.raises(ValueError, match="longer than"):
        make_windows(np.zeros((1, 10)), window=20)
    with pytest.raises(ValueError, match="groups"):
        make_windows(np.zeros((2, 10)), window=4, groups=[1, 2, 3])


def test_simulated_label_round_trip_keeps_hyphenated_indicator(tmp_path):
    from calgan_sklearn.datasets import load_spikefinder, make_calcium, write_spikefinder

    sim = make_calcium(n_neurons=2, duration=5, indicator="OGB-1", random_state=0)
    write_spikefinder(sim, tmp_path)
    back = load_spikefinder(tmp_path)
    assert set(back.indicator) == {"OGB-1"}
    assert set(back.dataset) == {"sim-OGB-1"}
