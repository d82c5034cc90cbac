"""Tests of the deep trace-level spike-inference estimator (tiny models, seconds each)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate

from calgan_sklearn.datasets import make_calcium, resample_traces
from calgan_sklearn.metrics import spikefinder_correlation
from calgan_sklearn.models._inference import DeepSpikeInference, normalize_traces

TINY = dict(filters=8, depth=2, crop_length=256, batch_size=16, epochs=1, random_state=0)


@pytest.fixture(scope="module")
def sim():
    return make_calcium(
        n_neurons=12,
        duration=60.0,
        fs=100.0,
        indicator="GCaMP6f",
        noise_level=1.0,
        firing_rate=1.0,
        random_state=0,
    )


@pytest.fixture(scope="module")
def tiny_fitted(sim):
    return DeepSpikeInference(**TINY).fit(sim.calcium[:8], sim.spikes[:8])


def _ragged(X, cut=(0, 1500, 3000)):
    X = np.array(X, dtype=float)
    for i, n in enumerate(cut):
        if n:
            X[i, n:] = np.nan
    return X


def test_predict_keeps_shape_and_nan_padding(tiny_fitted, sim):
    X = _ragged(sim.calcium[8:11])
    rates = tiny_fitted.predict(X)
    assert rates.shape == X.shape
    np.testing.assert_array_equal(np.isnan(rates), np.isnan(X))
    assert np.all(rates[~np.isnan(rates)] >= 0)
    # a trace's rates do not depend on the other traces it is batched with
    alone = tiny_fitted.predict(X[1:2, :1500])
    np.testing.assert_allclose(alone[0], rates[1, :1500], rtol=1e-4, atol=1e-6)


def test_fit_accepts_nan_padded_traces(sim):
    X, y = _ragged(sim.calcium[:3]), _ragged(sim.spikes[:3])
    est = DeepSpikeInference(**TINY).fit(X, y)
    assert est.n_iter_ == 1 and len(est.history_["loss"]) == 1
    assert np.isfinite(est.history_["loss"][0])


@pytest.mark.parametrize("fs", [50.0, 30.0])
def test_other_frame_rate_is_resampled_and_mapped_back(tiny_fitted, sim, fs):
    X100 = sim.calcium[8:10]
    X = resample_traces(X100, 100.0, fs)
    est = clone(tiny_fitted).set_params(fs=fs)
    est.__dict__.update({k: v for k, v in vars(tiny_fitted).items() if k.endswith("_")})
    est._seed = tiny_fitted._seed
    rates = est.predict(X)
    assert rates.shape == X.shape
    np.testing.assert_array_equal(np.isnan(rates), np.isnan(X))
    # the network runs at 100 Hz: the total rate matches predicting at 100 Hz
    total_100 = np.nansum(tiny_fitted.predict(resample_traces(X, fs, 100.0)), axis=1)
    np.testing.assert_allclose(np.nansum(rates, axis=1), total_100, rtol=1e-6)
    assert np.all(np.nansum(rates, axis=1) > 0)


def test_learns_spikes_on_simulated_data(sim):
    est = DeepSpikeInference(
        filters=16,
        depth=4,
        crop_length=512,
        batch_size=16,
        epochs=40,
        learning_rate=5e-3,
        random_state=0,
    ).fit(sim.calcium[:8], sim.spikes[:8])
    X, y = sim.calcium[8:], sim.spikes[8:]
    deep = est.score(X, y)
    derivative = np.clip(np.diff(X, axis=1, prepend=X[:, :1]), 0, None)
    baseline = spikefinder_correlation(y, derivative, fs=100.0)
    assert deep > 0.5
    assert deep > baseline + 0.05
    # rates are in spikes per frame: the total is of the right order
    ratio = np.nansum(est.predict(X)) / np.nansum(y)
    assert 0.3 < ratio < 3.0


def test_cross_validate_and_grid_search_with_groups(sim):
    X, y = sim.calcium[:4, :2000], sim.spikes[:4, :2000]
    groups = np.repeat(["a", "b"], 2)
    est = DeepSpikeInference(**TINY)
    cv = cross_validate(est, X, y, groups=groups, cv=LeaveOneGroupOut())
    assert len(cv["test_score"]) == 2 and np.all(np.isfinite(cv["test_score"]))
    grid = GridSearchCV(est, {"filters": [4, 8]}, cv=LeaveOneGroupOut())
    grid.fit(X, y, groups=groups)
    assert grid.best_params_["filters"] in (4, 8)
    assert grid.predict(sim.calcium[4:6]).shape == sim.calcium[4:6].shape


def test_clone_pickle_and_save_load(tiny_fitted, sim, tmp_path):
    params = clone(tiny_fitted).get_params()
    assert params == DeepSpikeInference(**TINY).get_params()
    X = sim.calcium[8:10]
    expected = tiny_fitted.predict(X)
    restored = pickle.loads(pickle.dumps(tiny_fitted))
    np.testing.assert_allclose(restored.predict(X), expected, rtol=1e-5, atol=1e-7)
    loaded = DeepSpikeInference.load(tiny_fitted.save(tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict(X), expected, rtol=1e-5, atol=1e-7)


def test_same_seed_same_model(sim):
    X, y = sim.calcium[:3, :2000], sim.spikes[:3, :2000]
    a = DeepSpikeInference(**TINY).fit(X, y).predict(X)
    b = DeepSpikeInference(**TINY).fit(X, y).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_normalization_makes_units_irrelevant(sim):
    x = sim.calcium[0]
    (a, b), _ = normalize_traces([x, 37.0 * x + 5.0])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_ensemble_predicts_the_mean_of_independent_members(sim, tmp_path):
    X, y = sim.calcium[:3, :2000], sim.spikes[:3, :2000]
    est = DeepSpikeInference(**{**TINY, "ensemble_size": 3}).fit(X, y)
    assert est.model_.output_shape == (None, None, 3)
    z, _ = normalize_traces(list(X))
    members = np.asarray(est.model_(np.stack(z)[..., None]))
    # members start from different weights, so they disagree
    assert np.abs(members[..., 0] - members[..., 1]).max() > 1e-4
    # (away from the end, where predict pads the traces with zeros)
    inner = slice(0, 1500)
    np.testing.assert_allclose(
        est.predict(X)[:, inner], members.mean(axis=-1)[:, inner], rtol=1e-4, atol=1e-6
    )
    # member 0 is trained exactly as a single network with the same seed
    single = DeepSpikeInference(**TINY).fit(X, y).predict(X)
    np.testing.assert_allclose(members[:, inner, 0], single[:, inner], rtol=1e-2, atol=1e-4)
    est.save(tmp_path / "ens")
    from calgan_sklearn import load_model

    np.testing.assert_allclose(load_model(tmp_path / "ens").predict(X), est.predict(X))


def test_bandwidth_augmentation_mimics_low_frame_rate_recordings():
    from calgan_sklearn.models._inference import _CropDataset, _noise_sd

    (x,), noise = normalize_traces([np.random.default_rng(0).normal(size=30000)])
    ds = _CropDataset(
        [x], [np.zeros_like(x)], noise, crop_length=1024, batch_size=200, steps=1,
        lowpass_min_fs=8.0, seed=0,
    )  # fmt: skip
    crops = ds[0][0][..., 0]
    power = np.abs(np.fft.rfft(crops - crops.mean(axis=1, keepdims=True), axis=1)) ** 2
    above_45hz = power[:, 461:].sum(axis=1) / power.sum(axis=1)  # white noise: ~0.1
    filtered = above_45hz < 0.05
    assert 0.15 < filtered.mean() < 0.35  # a quarter of the crops
    # every crop keeps the noise level normalize_traces gives a whole recording
    np.testing.assert_allclose([_noise_sd(c) for c in crops], 0.1, rtol=0.2)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((2, 100)), np.zeros((2, 90)), "same frames"),
        (np.full((2, 100), np.nan), np.zeros((2, 100)), "only NaN"),
        (np.zeros((2, 10, 3)), np.zeros((2, 10, 3)), "n_traces, n_frames"),
        (np.zeros((2, 100)), None, "needs spike counts"),
        (np.zeros((2, 100)), -np.ones((2, 100)), "non-negative"),
    ],
)
def test_bad_input_raises_clear_errors(X, y, match):
    with pytest.raises(ValueError, match=match):
        DeepSpikeInference(**TINY).fit(X, y)


def test_bad_parameters_and_unfitted():
    X, y = np.zeros((2, 100)), np.zeros((2, 100))
    with pytest.raises(ValueError, match="filters"):
        DeepSpikeInference(filters=0).fit(X, y)
    with pytest.raises(ValueError, match="normalization"):
        DeepSpikeInference(normalization="zscore").fit(X, y)
    with pytest.raises(ValueError, match="lowpass_min_fs"):
        DeepSpikeInference(lowpass_min_fs=0.0).fit(X, y)
    with pytest.raises(NotFittedError):
        DeepSpikeInference().predict(X)
    with pytest.raises(ValueError, match="one weight per trace"):
        DeepSpikeInference(**TINY).fit(X, y, sample_weight=[1.0, 2.0, 3.0])


@pytest.mark.realdata
def test_pretrained_predicts_real_data(spikefinder_dir):
    from calgan_sklearn.datasets import load_spikefinder
    from calgan_sklearn.pretrained import load_pretrained

    try:
        est = load_pretrained()
    except FileNotFoundError:
        pytest.skip("the pretrained model has not been trained yet")
    data = load_spikefinder(spikefinder_dir, datasets=["6"])
    X, y = data.calcium[:3, :12000], data.spikes[:3, :12000]
    rates = est.predict(X)
    assert rates.shape == X.shape
    # trained on these recordings (among others): well above chance
    assert spikefinder_correlation(y, rates, fs=100.0) > 0.3
