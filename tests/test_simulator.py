import numpy as np
import pytest

from calgan_sklearn.datasets import (
    INDICATORS,
    estimate_decay_time,
    make_calcium,
    make_windows,
)
from calgan_sklearn.metrics import noise_level


def test_make_calcium_shapes_labels_and_determinism():
    a = make_calcium(n_neurons=3, duration=20.0, fs=30.0, random_state=4)
    b = make_calcium(n_neurons=3, duration=20.0, fs=30.0, random_state=4)
    c = make_calcium(n_neurons=3, duration=20.0, fs=30.0, random_state=5)
    assert a.calcium.shape == a.spikes.shape == (3, 600)
    assert a.fs == 30.0
    np.testing.assert_array_equal(a.calcium, b.calcium)
    np.testing.assert_array_equal(a.spikes, b.spikes)
    assert not np.array_equal(a.calcium, c.calcium)
    assert a.dataset.tolist() == ["sim-GCaMP6s"] * 3
    assert len(set(a.neuron)) == 3
    assert np.all(a.spikes >= 0) and np.all(a.spikes == np.round(a.spikes))


def test_make_calcium_firing_rate_and_indicator_list():
    data = make_calcium(
        n_neurons=4,
        duration=300.0,
        indicator=["GCaMP6f", "OGB-1"],
        firing_rate=2.0,
        random_state=0,
    )
    assert data.indicator.tolist() == ["GCaMP6f", "OGB-1", "GCaMP6f", "OGB-1"]
    observed = data.spikes.sum(axis=1) / 300.0
    np.testing.assert_allclose(observed, data.firing_rate, rtol=0.35)


def test_make_calcium_unknown_indicator_lists_valid_names():
    with pytest.raises(ValueError, match="GCaMP6s"):
        make_calcium(indicator="GCaMP99")


@pytest.mark.parametrize("nu", [0.5, 2.0, 5.0])
def test_make_calcium_noise_level_is_what_was_requested(nu):
    data = make_calcium(n_neurons=4, duration=60.0, noise_level=nu, random_state=1)
    np.testing.assert_allclose(noise_level(data.calcium, data.fs), nu, rtol=0.1)
    np.testing.assert_allclose(data.noise_level, nu)


def test_make_calcium_spikes_drive_fluorescence():
    data = make_calcium(n_neurons=2, duration=60.0, noise_level=0.5, random_state=2)
    X, y, _ = make_windows(
        data.calcium, data.spikes, window=40, stride=5, target="count", center_width=10
    )
    # windows with spikes in their centre are brighter at the end than at the start
    rise = X[:, -10:].mean(1) - X[:, :10].mean(1)
    assert rise[y > 0].mean() > rise[y == 0].mean() + 0.05


@pytest.mark.parametrize("indicator", sorted(INDICATORS))
def test_simulated_decay_time_follows_indicator(indicator):
    data = make_calcium(
        n_neurons=3, duration=300.0, indicator=indicator, noise_level=0.5, random_state=0
    )
    tau = np.median(estimate_decay_time(data.calcium, data.spikes, data.fs))
    assert tau == pytest.approx(INDICATORS[indicator]["decay"], rel=0.5)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "indicator, folders",
    [
        ("GCaMP6s", ["DS12-GCaMP6s-m-V1-neuropil-corrected", "DS14-GCaMP6s-m-V1"]),
        ("GCaMP6f", ["DS09-GCaMP6f-m-V1", "DS10-GCaMP6f-m-V1-neuropil-corrected"]),
        ("GCaMP7f", ["DS29-GCaMP7f-m-V1"]),
    ],
)
def test_simulated_decay_time_within_factor_two_of_real(cascade_30hz, indicator, folders):
    real = cascade_30hz
    keep = np.isin(real.dataset, folders)
    tau_real = np.nanmedian(estimate_decay_time(real.calcium[keep], real.spikes[keep], real.fs))
    sim = make_calcium(
        n_neurons=6, duration=300.0, fs=30.0, indicator=indicator, noise_level=1.0, random_state=0
    )
    tau_sim = np.nanmedian(estimate_decay_time(sim.calcium, sim.spikes, sim.fs))
    assert 0.5 < tau_sim / tau_real < 2.0, (tau_sim, tau_real)


def test_render_calcium_renders_given_spikes_with_padding_and_checks_kinetics():
    from calgan_sklearn.datasets import INDICATORS, render_calcium

    spikes = np.zeros((2, 600))
    spikes[:, [100, 400]] = 1.0
    spikes[1, 300:] = np.nan
    calcium = render_calcium(spikes, 30.0, "GCaMP6s", amplitude=[0.2, 0.4], random_state=0)
    assert np.array_equal(np.isnan(calcium), np.isnan(spikes))
    assert calcium[0, :100].max() == 0.0 and calcium[0, 100:130].max() > 0.1
    assert calcium[1, 100:130].max() > calcium[0, 100:130].max()
    noisy = render_calcium(spikes, 30.0, "GCaMP6s", noise_sd=0.05, drift=0.01, random_state=0)
    assert 0.03 < np.nanstd(noisy[0, :90]) < 0.08
    slow = dict(INDICATORS["GCaMP6s"], decay=3.0)
    assert render_calcium(spikes, 30.0, slow, amplitude=0.2)[0, 190] > calcium[0, 190]
    with pytest.raises(ValueError, match="unknown indicator"):
        render_calcium(spikes, 30.0, "GCaMP99")
    with pytest.raises(ValueError, match="lack \\['hill', 'saturation'\\]"):
        render_calcium(spikes, 30.0, dict(amplitude=0.1, rise=0.01, decay=0.5))


@pytest.mark.parametrize("duration", [2.0, 5.0, 60.0])
def test_drift_has_the_requested_size_on_short_traces(duration):
    # the 20 s drift used to be divided by its own tiny SD on short traces,
    # putting the whole trace thousands of dF/F away from zero
    kw = dict(n_neurons=4, duration=duration, fs=30.0, random_state=0)
    drift = make_calcium(drift=0.05, **kw).calcium - make_calcium(drift=0.0, **kw).calcium
    assert np.all(np.abs(np.nanmean(drift, axis=1)) < 1e-9)
    np.testing.assert_allclose(np.nanstd(drift, axis=1), 0.05, rtol=1e-6)
