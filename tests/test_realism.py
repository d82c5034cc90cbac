"""The realism measures of synthetic traces (calgan_sklearn._realism via evaluation)."""

import numpy as np
import pytest

from calgan_sklearn.baselines import OASIS
from calgan_sklearn.datasets import make_calcium, render_calcium
from calgan_sklearn.evaluation import (
    REFERENCES,
    realism_report,
    spectrum_distance,
    split_neurons,
    sta_error,
    tstr_score,
    two_sample_auc,
)
from calgan_sklearn.signal import noise_sd


@pytest.fixture(scope="module")
def sim():
    return make_calcium(
        n_neurons=12, duration=60.0, fs=30.0, indicator="GCaMP6f", firing_rate=0.5, random_state=0
    )


def _with_noise(calcium, factor, seed=0):
    rng = np.random.default_rng(seed)
    return calcium + factor * noise_sd(calcium)[:, None] * rng.standard_normal(calcium.shape)


def test_auc_of_two_halves_of_one_simulation_is_near_chance(sim):
    auc = two_sample_auc(sim.calcium[:6], sim.calcium[6:], sim.fs)
    assert 0.25 < auc < 0.75


def test_auc_of_a_set_against_itself_is_one_half(sim):
    assert two_sample_auc(sim.calcium, sim.calcium, sim.fs, spikes=sim.spikes) == 0.5


@pytest.mark.parametrize("kind", ["noise x5", "white noise"])
def test_auc_of_clearly_different_sets_is_near_one(sim, kind):
    if kind == "noise x5":
        other = _with_noise(sim.calcium, 5.0)
    else:
        other = _with_noise(np.zeros_like(sim.calcium), 1.0) * noise_sd(sim.calcium)[:, None]
    auc = two_sample_auc(sim.calcium, other, sim.fs, spikes=sim.spikes)
    assert auc > 0.9


def test_auc_groups_keep_trials_of_one_neuron_together(sim):
    groups = np.repeat(np.arange(6), 2)
    auc = two_sample_auc(sim.calcium, _with_noise(sim.calcium, 5.0), sim.fs, groups=groups, cv=3)
    assert auc > 0.8
    with pytest.raises(ValueError, match="groups has 3 labels for 12 real traces"):
        two_sample_auc(sim.calcium, sim.calcium, sim.fs, groups=[0, 1, 2])


def test_sta_error_is_zero_for_identical_and_large_for_shuffled(sim):
    assert sta_error(sim.calcium, sim.calcium, sim.spikes, sim.fs) == 0.0
    shuffled = sim.calcium[np.roll(np.arange(len(sim.calcium)), 1)]
    assert sta_error(sim.calcium, shuffled, sim.spikes, sim.fs) > 0.5
    err, t, sta_r, sta_s = sta_error(
        sim.calcium, sim.calcium, sim.spikes, sim.fs, window=(-0.5, 2.0), return_sta=True
    )
    assert t.shape == sta_r.shape == sta_s.shape == (75,)
    assert t[0] == pytest.approx(-0.5) and sta_r[15:30].max() > 0.05


def test_spectrum_distance_is_zero_for_identical_and_20_db_for_tenfold(sim):
    assert spectrum_distance(sim.calcium, sim.calcium, sim.fs) == 0.0
    noise = _with_noise(np.zeros((4, 2000)), 1.0)
    assert spectrum_distance(noise, 10.0 * noise, sim.fs) == pytest.approx(20.0)
    d, freqs, s_r, s_s = spectrum_distance(noise, noise, 30.0, fmax=5.0, return_spectra=True)
    assert freqs.min() > 0 and freqs.max() <= 5.0 and s_r.shape == freqs.shape


def test_report_has_one_row_per_generator_and_the_two_references(sim):
    generators = {
        "identity": lambda spikes: sim.calcium.copy(),
        "louder noise": lambda spikes: _with_noise(sim.calcium, 5.0),
    }
    report = realism_report(sim.calcium, sim.spikes, sim.fs, generators, indicator="GCaMP6f", cv=3)
    assert report["generator"].tolist() == ["identity", "louder noise", *REFERENCES]
    assert report["reference"].tolist() == [False, False, True, True]
    assert list(report.columns) == [
        "generator",
        "reference",
        "auc",
        "sta_error",
        "spectrum_distance",
        "n_traces",
    ]
    rows = report.set_index("generator")
    assert rows.loc["identity", "auc"] == 0.5 and rows.loc["identity", "sta_error"] == 0.0
    # the simulator renders its own kind of data; white noise has no transients
    assert rows.loc["simulator", "auc"] < 0.75 < rows.loc["matched noise", "auc"]
    assert rows.loc["simulator", "sta_error"] < rows.loc["matched noise", "sta_error"]


def test_report_keeps_padding_and_checks_generators(sim):
    calcium, spikes = sim.calcium.copy(), sim.spikes.copy()
    calcium[0, 1500:] = spikes[0, 1500:] = np.nan
    report = realism_report(calcium, spikes, sim.fs, cv=2, indicator="GCaMP6f")
    assert np.isfinite(report[["auc", "sta_error", "spectrum_distance"]].to_numpy()).all()
    with pytest.raises(ValueError, match="returned shape"):
        realism_report(calcium, spikes, sim.fs, {"bad": lambda s: s[:, :10]}, references=False)
    with pytest.raises(ValueError, match="NaN or inf inside"):
        realism_report(calcium, spikes, sim.fs, {"bad": lambda s: s * np.nan}, references=False)
    with pytest.raises(ValueError, match="taken by the references"):
        realism_report(calcium, spikes, sim.fs, {"simulator": lambda s: s})


def test_tstr_with_the_simulator_as_generator_gives_a_finite_ratio(sim):
    train, test = split_neurons(sim, test_size=0.25, random_state=0)
    rendered = render_calcium(
        train.spikes, train.fs, "GCaMP6f", noise_sd=noise_sd(train.calcium), random_state=0
    )
    scores = tstr_score(OASIS(), (rendered, train.spikes), test, sim.fs, real_train=train)
    assert set(scores) == {"tstr", "trtr", "ratio"}
    assert np.isfinite(scores["ratio"]) and 0 < scores["tstr"] <= 1
    only = tstr_score(lambda: OASIS(), (rendered, train.spikes), test, sim.fs)
    assert only["tstr"] == scores["tstr"] and np.isnan(only["ratio"])


def test_split_neurons_holds_out_whole_neurons_within_each_dataset():
    a = make_calcium(n_neurons=8, duration=30.0, indicator="GCaMP6f", random_state=0)
    b = make_calcium(n_neurons=1, duration=30.0, indicator="OGB-1", random_state=1)
    data = {k: np.concatenate([a[k], b[k]]) for k in ("calcium", "spikes", "dataset", "neuron")}
    data["neuron"] = np.concatenate([np.repeat(a.neuron[:4], 2), b.neuron])  # 2 trials each
    data["fs"] = a.fs
    with pytest.warns(UserWarning, match="has one neuron; it stays in training"):
        train, test = split_neurons(data, test_size=0.25, random_state=0)
    assert len(test.calcium) == 2 and set(test.dataset) == {"sim-GCaMP6f"}
    assert not set(train.neuron) & set(test.neuron)
    assert len(train.calcium) + len(test.calcium) == 9
    with pytest.raises(ValueError, match="test_size must be a fraction"):
        split_neurons(data, test_size=1.5)


def test_clear_errors_for_bad_inputs(sim):
    real = sim.calcium
    with pytest.raises(ValueError, match="real has shape .* but synthetic has shape"):
        two_sample_auc(real, real[:, :900], sim.fs, spikes=sim.spikes)
    with pytest.raises(ValueError, match="calcium_real has shape .* calcium_synth has shape"):
        sta_error(real, real[:5], sim.spikes, sim.fs)
    nan_only = real.copy()
    nan_only[3] = np.nan
    with pytest.raises(ValueError, match=r"synthetic trace\(s\) \[3\] contain only NaN"):
        two_sample_auc(real, nan_only, sim.fs)
    with pytest.raises(ValueError, match="shorter than one crop of 5 s"):
        two_sample_auc(real[:, :100], real[:, :100], sim.fs)
    with pytest.raises(ValueError, match="shorter than one Welch segment"):
        spectrum_distance(real[:, :100], real[:, :100], sim.fs)
    with pytest.raises(ValueError, match="at least 2 groups"):
        two_sample_auc(real[:1], real[1:2], sim.fs)
    with pytest.raises(ValueError, match="isolated spikes"):
        sta_error(real[:, :200], real[:, :200], np.zeros((12, 200)), sim.fs)


# -- the figure --------------------------------------------------------------------------
def test_plot_realism_draws_both_sets_of_the_same_spike_trains(sim):
    pytest.importorskip("matplotlib")
    from calgan_sklearn.evaluation import plot_realism

    real = sim.calcium[:4].copy()
    spikes = sim.spikes[:4].copy()
    real[1, 1500:], spikes[1, 1500:] = np.nan, np.nan  # a shorter trace
    rendered = _with_noise(np.nan_to_num(real), 0.5)
    rendered[1, 1500:] = np.nan
    fig = plot_realism(real, rendered, spikes, sim.fs, n_traces=2, seconds=20.0)
    axes = fig.axes
    assert len(axes) == 2 * 2 + 2  # real/rendered per neuron, then STA and spectrum
    for row in range(2):
        (line_real,), (line_synth,) = axes[2 * row].lines, axes[2 * row + 1].lines
        t = line_real.get_xdata()
        assert len(t) == 600 and np.array_equal(t, line_synth.get_xdata())  # 20 s at 30 Hz
        frames = np.round(t * sim.fs).astype(int)
        np.testing.assert_allclose(line_real.get_ydata(), real[row, frames])
        np.testing.assert_allclose(line_synth.get_ydata(), rendered[row, frames])
        ticks = axes[2 * row].collections[0].get_segments()
        assert len(ticks) == int((spikes[row, frames] > 0).sum()) > 0  # the spikes as ticks
    _, lags, sta_real, sta_synth = sta_error(real, rendered, spikes, sim.fs, return_sta=True)
    sta_ax, psd_ax = axes[-2:]
    np.testing.assert_allclose(sta_ax.lines[0].get_xdata(), lags)
    np.testing.assert_allclose(sta_ax.lines[0].get_ydata(), sta_real)
    np.testing.assert_allclose(sta_ax.lines[1].get_ydata(), sta_synth)
    distance, freqs, s_real, _ = spectrum_distance(real, rendered, sim.fs, return_spectra=True)
    np.testing.assert_allclose(psd_ax.lines[0].get_ydata(), s_real)
    assert f"{distance:.1f} dB" in psd_ax.get_title()


def test_plot_realism_checks_its_input(sim):
    pytest.importorskip("matplotlib")
    from calgan_sklearn.evaluation import plot_realism

    real, spikes = sim.calcium[:2], sim.spikes[:2]
    with pytest.raises(ValueError, match="same traces"):
        plot_realism(real, real[:, :100], spikes, sim.fs)
    with pytest.raises(ValueError, match="n_traces"):
        plot_realism(real, real, spikes, sim.fs, n_traces=0)
    # too few isolated spikes for an average: the panel says so instead of failing
    fig = plot_realism(real[:, :300], real[:, :300], np.zeros((2, 300)), sim.fs)
    assert "too few isolated spikes" in fig.axes[-2].texts[0].get_text()
