"""Tests of the deep trace-level spike-inference estimator (tiny models, seconds each)."""

import pickle
import warnings

import numpy as np
import pytest
from _presets import TINY_DEEP as TINY
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_validate

from calgan_sklearn.baselines import robust_noise_sd
from calgan_sklearn.datasets import make_calcium, resample_traces
from calgan_sklearn.metrics import spikefinder_correlation
from calgan_sklearn.models import _inference
from calgan_sklearn.models._inference import (
    DeepSpikeInference,
    _scale_channels,
    _statistic_channels,
    network_rate,
    normalize_traces,
    trace_statistics,
)
from calgan_sklearn.signal import group_means, spread_groups, spread_groups_by_rise

#: The simulated recording most tests train and predict on: 12 GCaMP6f neurons at 1 Hz.
SIM = dict(
    n_neurons=12,
    duration=60.0,
    fs=100.0,
    indicator="GCaMP6f",
    noise_level=1.0,
    firing_rate=1.0,
    random_state=0,
)


@pytest.fixture(scope="module")
def sim():
    return make_calcium(**SIM)


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


@pytest.mark.slow
def test_fit_accepts_nan_padded_traces(sim):
    X, y = _ragged(sim.calcium[:3]), _ragged(sim.spikes[:3])
    est = DeepSpikeInference(**TINY).fit(X, y)
    assert est.n_iter_ == 1 and len(est.history_["loss"]) == 1
    assert np.isfinite(est.history_["loss"][0])


def _refit_at(fitted, fs):
    """The fitted estimator with another ``fs`` (what a user gets with set_params)."""
    est = pickle.loads(pickle.dumps(fitted))
    return est.set_params(fs=fs)


@pytest.mark.parametrize("fs", [100.0, 50.0])
def test_network_runs_at_native_rate_on_frame_groups(tiny_fitted, sim, fs):
    """Above 20 Hz the network reads means of frame groups, never upsampled traces;
    each group's count goes back on its frames evenly, or where the calcium rises."""
    X = _ragged(resample_traces(sim.calcium[8:11], 100.0, fs), cut=(0, int(15 * fs), 0))
    factor, rate = network_rate(fs)
    assert (factor, rate) == {100.0: (5, 20.0), 50.0: (3, 50.0 / 3)}[fs]
    even = _refit_at(tiny_fitted, fs).set_params(refine_timing=False).predict(X)
    sharp = _refit_at(tiny_fitted, fs).predict(X)  # refine_timing=True, the default
    for rates in (even, sharp):
        assert rates.shape == X.shape
        np.testing.assert_array_equal(np.isnan(rates), np.isnan(X))
    # the same network on the group means at the network rate
    lengths = np.isfinite(X).sum(axis=1)
    groups = np.full((len(X), int(np.ceil(X.shape[1] / factor))), np.nan)
    for i, n in enumerate(lengths):
        g = group_means(X[i, :n], factor)
        groups[i, : len(g)] = g
    at_rate = _refit_at(tiny_fitted, rate).predict(groups)
    # float32 networks on differently batched inputs: equal to 1e-5 of the rates' scale
    # (an AVX2-only CPU put rates of 5.5e-5 1.2e-8 apart, beyond a fixed atol of 1e-8)
    atol = 1e-5 * float(np.nanmax(even))
    for i, n in enumerate(lengths):
        g = at_rate[i][np.isfinite(at_rate[i])]
        np.testing.assert_allclose(even[i, :n], spread_groups(g, factor, n), rtol=1e-4, atol=atol)
        np.testing.assert_allclose(
            sharp[i, :n], spread_groups_by_rise(g, X[i, :n], factor), rtol=1e-4, atol=atol
        )
        # expected counts are kept either way: the total over the trace is the same
        assert np.sum(even[i, :n]) == pytest.approx(g.sum(), rel=1e-5)
        assert np.sum(sharp[i, :n]) == pytest.approx(g.sum(), rel=1e-5)


def test_low_frame_rates_are_served_natively_and_out_of_range_rates_refused(tiny_fitted, sim):
    X = resample_traces(sim.calcium[8:10], 100.0, 10.0)
    rates = _refit_at(tiny_fitted, 10.0).predict(X)
    assert rates.shape == X.shape and np.all(rates >= 0)
    for fs in (5.0, 2000.0):
        with pytest.raises(ValueError, match=r"outside the 7.5-1000 Hz"):
            _refit_at(tiny_fitted, fs).predict(X)
    with pytest.raises(ValueError, match=r"outside the 7.5-1000 Hz"):
        DeepSpikeInference(**{**TINY, "fs": 0.033}).fit(X, np.zeros_like(X))


def test_long_traces_are_predicted_in_pieces_with_the_same_result(tiny_fitted, sim, monkeypatch):
    X = sim.calcium[8:10]
    whole = tiny_fitted.predict(X)
    # pieces of 200 network frames (8 s) instead of 100,000: same rates
    monkeypatch.setattr(_inference, "MAX_PIECE_FRAMES", 200)
    pieces = tiny_fitted.predict(X)
    # float32 networks on inputs of other shapes: equal to 1e-5 of the rates' scale
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-5 * float(np.nanmax(whole)))


def test_predict_in_chunks_of_neurons_gives_the_same_rates(
    tiny_fitted, sim, monkeypatch, tmp_path
):
    from calgan_sklearn import base

    X = _ragged(sim.calcium[:5])
    whole = tiny_fitted.predict(X)
    assert whole.dtype == np.float32
    # chunks of one or two traces instead of two million frames
    monkeypatch.setattr(base, "PREDICT_CHUNK_FRAMES", 2 * X.shape[1] - 1)
    chunked = tiny_fitted.predict(X)
    scale = np.nanmax(whole)
    assert np.nanmax(np.abs(chunked - whole)) <= 1e-6 * scale
    # chunks are inferred two at a time, in threads: the same rates as one by one
    assert _inference.PREDICT_WORKERS == 2
    monkeypatch.setattr(_inference, "PREDICT_WORKERS", 1)
    np.testing.assert_array_equal(tiny_fitted.predict(X), chunked)
    monkeypatch.setattr(_inference, "PREDICT_WORKERS", 2)
    np.testing.assert_array_equal(np.isnan(chunked), np.isnan(X))
    # a float32 memory map in, a memory-mapped output file out
    np.save(tmp_path / "F.npy", X.astype(np.float32))
    F = np.load(tmp_path / "F.npy", mmap_mode="r")
    out = np.lib.format.open_memmap(tmp_path / "r.npy", "w+", np.float32, X.shape)
    assert tiny_fitted.predict(F, out=out) is out
    out.flush()
    expected = tiny_fitted.predict(F.astype(np.float64))
    np.testing.assert_array_equal(np.load(tmp_path / "r.npy"), expected)
    assert np.nanmax(np.abs(expected - whole)) <= 1e-5 * scale  # the float32 input
    with pytest.raises(ValueError, match="out must be a float array of the input's shape"):
        tiny_fitted.predict(X, out=np.empty((2, 3)))
    # a bad trace in a later chunk is named by its number in X
    X[4, 10] = np.nan
    with pytest.raises(ValueError, match=r"trace\(s\) \[4\] have NaN values before"):
        tiny_fitted.predict(X)


@pytest.mark.slow
def test_training_rate_ladder_follows_the_data_rate(sim):
    X, y = sim.calcium[:2, :3000], sim.spikes[:2, :3000]
    est = DeepSpikeInference(**TINY).fit(X, y)
    assert est.training_rates_ == [7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0]
    X20 = resample_traces(X, 100.0, 20.0)
    y20 = resample_traces(y, 100.0, 20.0, kind="counts")
    est20 = DeepSpikeInference(**{**TINY, "fs": 20.0}).fit(X20, y20)
    assert est20.training_rates_ == [7.5, 10.0, 12.5, 15.0, 17.5, 20.0]
    # mean rate in spikes per second, whatever the frame rate
    assert est20.mean_rate_ == pytest.approx(est.mean_rate_, rel=0.02)


@pytest.mark.slow
def test_learns_spikes_on_simulated_data(sim):
    est = DeepSpikeInference(
        filters=16,
        depth=4,
        crop_length=128,
        batch_size=16,
        epochs=40,
        ensemble_size=1,
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_same_seed_same_model(sim):
    X, y = sim.calcium[:3, :2000], sim.spikes[:3, :2000]
    a = DeepSpikeInference(**TINY).fit(X, y).predict(X)
    b = DeepSpikeInference(**TINY).fit(X, y).predict(X)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_normalization_makes_units_irrelevant(sim):
    x = sim.calcium[0]
    (a, b), _ = normalize_traces([x, 37.0 * x + 5.0])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_ensemble_predicts_the_mean_of_independent_members(sim, tmp_path):
    X, y = sim.calcium[:3, :2000], sim.spikes[:3, :2000]
    est = DeepSpikeInference(
        **{
            **TINY,
            "ensemble_size": 3,
            "distill_epochs": 0,
            "floor_percentile": None,
            "refine_timing": False,
        }
    ).fit(X, y)
    assert est.model_.output_shape == (None, None, 3)
    factor, rate = network_rate(100.0)
    z, noise = normalize_traces([group_means(x, factor) for x in X])
    dff = [robust_noise_sd(group_means(x, factor)) for x in X]  # units="dff"
    stats = [
        (*_statistic_channels(trace_statistics(c, rate), n), *_scale_channels(d))
        for c, n, d in zip(z, noise, dff)
    ]
    inp = np.zeros((len(z), len(z[0]), 6))
    inp[..., 0], inp[..., 1], inp[..., 2:] = (
        np.stack(z),
        np.log(rate / 20.0),
        np.array(stats)[:, None, :],
    )
    members = np.asarray(est.model_(inp.astype(np.float32)))
    # members start from different weights, so they disagree
    assert np.abs(members[..., 0] - members[..., 1]).max() > 1e-4
    # (away from the end, where predict pads the traces with zeros)
    inner = slice(0, 375)
    mean = np.array([spread_groups(m, factor, 2000) for m in members.mean(axis=-1)])
    np.testing.assert_allclose(
        est.predict(X)[:, : factor * 375], mean[:, : factor * 375], rtol=1e-4, atol=1e-6
    )
    # member 0 is trained exactly as a single network with the same seed
    single = DeepSpikeInference(**TINY).fit(X, y)
    one = np.asarray(single.model_(inp.astype(np.float32)))[..., 0]
    np.testing.assert_allclose(members[:, inner, 0], one[:, inner], rtol=1e-2, atol=1e-4)
    est.save(tmp_path / "ens")
    from calgan_sklearn import load_model

    np.testing.assert_allclose(load_model(tmp_path / "ens").predict(X), est.predict(X))


def test_bandwidth_augmentation_mimics_low_frame_rate_recordings():
    from calgan_sklearn.models._inference import _CropDataset, _RateBank

    (x,), noise = normalize_traces([np.random.default_rng(0).normal(size=30000)])
    bank = _RateBank(30.0, [x], [np.zeros_like(x)], noise)
    ds = _CropDataset([bank], crop_length=256, batch_size=200, steps=1, lowpass_min_fs=5.0, seed=0)
    crops = ds[0][0][..., 0]
    power = np.abs(np.fft.rfft(crops - crops.mean(axis=1, keepdims=True), axis=1)) ** 2
    above = power[:, 116:].sum(axis=1) / power.sum(axis=1)  # above 13.6 Hz; white: ~0.1
    filtered = above < 0.05
    assert 0.15 < filtered.mean() < 0.35  # a quarter of the crops
    # every crop keeps the noise level normalize_traces gives a whole recording
    np.testing.assert_allclose([robust_noise_sd(c) for c in crops], 0.1, rtol=0.25)
    # the rate channel tells the network the frame rate
    np.testing.assert_allclose(ds[0][0][..., 1], np.log(30.0 / 20.0), rtol=1e-6)


def test_trace_statistics_tell_sparse_from_busy_neurons_and_follow_added_noise():
    from calgan_sklearn.models._inference import _CropDataset, _RateBank

    rng = np.random.default_rng(0)
    kernel = np.exp(-np.arange(60) / 15.0)
    sparse = np.convolve(rng.poisson(0.01, 9000), kernel)[:9000] + rng.normal(0, 0.1, 9000)
    busy = np.convolve(rng.poisson(0.5, 9000), 0.1 * kernel)[:9000] + rng.normal(0, 0.1, 9000)
    z, noise = normalize_traces([sparse, busy])
    (_, skew_sparse), (_, skew_busy) = (
        _statistic_channels(trace_statistics(c, 30.0), n) for c, n in zip(z, noise)
    )
    assert skew_sparse > 0.3 > 0.1 > skew_busy  # skewness 1.9 vs 0.25
    # a crop whose noise was raised m-fold carries the statistics such a trace would have
    bank = _RateBank(30.0, [z[0]], [np.zeros_like(z[0])], noise[:1])
    ds = _CropDataset([bank], crop_length=64, batch_size=64, steps=1, noise_range=(2.0, 2.0))
    x = ds[0][0]
    noisier = z[0] + rng.normal(0, noise[0] * np.sqrt(3.0), len(z[0]))
    (zn,), (nn,) = normalize_traces([noisier])
    expected = _statistic_channels(trace_statistics(zn, 30.0), nn)
    np.testing.assert_allclose(x[0, 0, 2:4], expected, atol=0.1)
    np.testing.assert_array_equal(x[0, 0, 4:], [0.0, 0.0])  # no dF/F scale given


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.zeros((2, 100)), np.zeros((2, 90)), "same frames"),
        (np.full((2, 100), np.nan), np.zeros((2, 100)), "only NaN"),
        (np.zeros((2, 10, 3)), np.zeros((2, 10, 3)), "n_traces, n_frames"),
        (np.zeros((2, 100)), None, "needs spike counts"),
        (np.zeros((2, 100)), -np.ones((2, 100)), "non-negative"),
        ([[0.0] * 100, [0.0] * 90], [[0.0] * 100, [0.0] * 90], "different lengths.*pad_traces"),
    ],
)
def test_bad_input_raises_clear_errors(X, y, match):
    with pytest.raises(ValueError, match=match):
        DeepSpikeInference(**TINY).fit(X, y)


def test_predict_on_traces_of_different_lengths_says_to_pad_them(tiny_fitted):
    with pytest.raises(ValueError, match=r"different lengths \(90 to 100 frames\).*pad_traces"):
        tiny_fitted.predict([[0.0] * 100, [0.0] * 90])
    rates = tiny_fitted.predict([[0.0] * 100, [0.0] * 100])  # a list of equal rows is fine
    assert rates.shape == (2, 100)


def test_bad_parameters_and_unfitted():
    X, y = np.zeros((2, 100)), np.zeros((2, 100))
    with pytest.raises(ValueError, match="filters"):
        DeepSpikeInference(filters=0).fit(X, y)
    with pytest.raises(ValueError, match="normalize"):
        DeepSpikeInference(normalize="zscore").fit(X, y)
    with pytest.raises(ValueError, match="lowpass_min_fs"):
        DeepSpikeInference(lowpass_min_fs=0.0).fit(X, y)
    with pytest.raises(NotFittedError):
        DeepSpikeInference().predict(X)
    with pytest.raises(ValueError, match="one weight per trace"):
        DeepSpikeInference(**TINY).fit(X, y, sample_weight=[1.0, 2.0, 3.0])


def test_the_fast_pretrained_model_is_the_same_training_in_a_narrower_network(sim):
    from calgan_sklearn.pretrained import load_pretrained, pretrained_info

    full, fast = load_pretrained(fs=100.0), load_pretrained(fs=100.0, fast=True)
    assert full.model_.get_layer("input_conv").filters == 32
    assert fast.model_.get_layer("input_conv").filters == 16
    assert fast.get_params()["distill_filters"] == 16
    assert fast.model_.count_params() < 0.4 * full.model_.count_params()
    info, info_fast = pretrained_info(), pretrained_info(fast=True)
    assert info_fast["datasets"] == info["datasets"] and info_fast["seed"] == info["seed"]
    assert "--fast" in info_fast["command"] and "--fast" not in info["command"]
    X = sim.calcium[:4]
    a, b = full.predict(X), fast.predict(X)
    keep = ~np.isnan(a)
    assert np.array_equal(keep, ~np.isnan(b))
    assert np.corrcoef(a[keep], b[keep])[0, 1] > 0.8
    assert np.nansum(b) == pytest.approx(np.nansum(a), rel=0.5)


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


def test_an_ensemble_is_distilled_into_one_network_that_tracks_it(sim, tmp_path):
    X, y = sim.calcium[:6], sim.spikes[:6]
    params = {**TINY, "ensemble_size": 2, "epochs": 2}
    ensemble = DeepSpikeInference(**params, distill_epochs=0).fit(X, y)
    distilled = DeepSpikeInference(**params, distill_epochs=3).fit(X, y)
    # the same ensemble was trained (same seed), then replaced by one network
    assert ensemble.model_.output_shape == (None, None, 2)
    assert distilled.model_.output_shape == (None, None, 1)
    assert distilled.history_["loss"] == pytest.approx(ensemble.history_["loss"], rel=1e-3)
    assert len(distilled.history_["distill_loss"]) == 3
    assert distilled.history_["distill_loss"][-1] < distilled.history_["distill_loss"][0]
    teacher, student = ensemble.predict(X), distilled.predict(X)
    assert np.array_equal(np.isnan(teacher), np.isnan(student))
    # the student reproduces the ensemble's rates far better than a constant does
    keep = ~np.isnan(teacher)
    residual = np.mean((student[keep] - teacher[keep]) ** 2)
    assert residual < 0.5 * np.var(teacher[keep])
    assert np.corrcoef(student[keep], teacher[keep])[0, 1] > 0.7
    # the distilled network is what is saved, loaded and trained further
    path = distilled.save(tmp_path / "distilled")
    loaded = DeepSpikeInference.load(path)
    np.testing.assert_array_equal(loaded.predict(X), student)
    loaded.set_params(warm_start=True, epochs=1).fit(X, y)
    assert loaded.model_.output_shape == (None, None, 1)
    assert not np.array_equal(loaded.predict(X), student)


def test_a_narrower_distilled_network_is_learned_saved_and_predicts_in_bfloat16(sim, tmp_path):
    X, y = sim.calcium[:6], sim.spikes[:6]
    params = {**TINY, "ensemble_size": 2, "epochs": 2, "distill_epochs": 3}
    wide = TINY["filters"]
    narrow = DeepSpikeInference(**params, distill_filters=wide // 2).fit(X, y)
    student = narrow.model_
    assert student.get_layer("input_conv").filters == wide // 2
    assert student.output_shape == (None, None, 1)
    full = DeepSpikeInference(**params).fit(X, y).model_
    assert student.count_params() < 0.5 * full.count_params()
    # learned from random weights: its loss falls, and it tracks the data
    assert narrow.history_["distill_loss"][-1] < narrow.history_["distill_loss"][0]
    rates = narrow.predict(X)
    assert np.array_equal(np.isnan(rates), np.isnan(X)) and np.nanmin(rates) >= 0
    # its bfloat16 twin has its width (not `filters`), and close rates
    half = narrow.set_params(inference_dtype="bfloat16").predict(X)
    keep = ~np.isnan(rates)
    assert np.corrcoef(half[keep], rates[keep])[0, 1] > 0.99
    narrow.set_params(inference_dtype="float32")
    loaded = DeepSpikeInference.load(narrow.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(X), rates)


def test_whole_trace_statistics_are_the_same_computed_in_blocks(monkeypatch):
    # long traces are reduced block by block to bound memory; the values must
    # be those of the whole trace at once
    rng = np.random.default_rng(1)
    z = (rng.standard_gamma(0.3, 60_000) + rng.normal(0, 0.1, 60_000)).astype(np.float32)
    whole = trace_statistics(z, 30.0)
    monkeypatch.setattr(_inference, "_BLOCK", 4096)
    np.testing.assert_allclose(trace_statistics(z, 30.0), whole, rtol=1e-6)
    z64 = z.astype(np.float64)
    smooth = _inference.gaussian_filter1d(z64, 15.0, mode="nearest")
    np.testing.assert_allclose(_inference._smoothed(z, 15.0), smooth, rtol=0, atol=1e-6)
    assert whole[1] == pytest.approx(z64.var(), rel=1e-9)


def test_bfloat16_inference_stays_within_a_percent_of_float32(tiny_fitted, sim):
    X = _ragged(sim.calcium[:3])
    f32 = tiny_fitted.predict(X)
    bf16 = clone(tiny_fitted).set_params(inference_dtype="bfloat16")
    bf16.__dict__.update({k: v for k, v in vars(tiny_fitted).items() if k.endswith("_")})
    rates = bf16.predict(X)
    assert rates.dtype == np.float32
    assert np.array_equal(np.isnan(rates), np.isnan(f32))
    keep = ~np.isnan(f32)
    assert np.abs(rates[keep] - f32[keep]).max() < 0.03 * np.abs(f32[keep]).max()
    assert np.corrcoef(rates[keep], f32[keep])[0, 1] > 0.999
    # the float32 network itself is untouched
    np.testing.assert_array_equal(tiny_fitted.predict(X), f32)
    # "auto" keeps small inputs in float32 (bfloat16's one-off cost per shape
    # would outweigh its speed) and takes bfloat16 for large ones where the CPU has it
    from calgan_sklearn.models._base import gpu_available, native_bfloat16

    def compute_dtype(network):
        return network.get_layer("input_conv").compute_dtype

    bf16.set_params(inference_dtype="auto")
    assert compute_dtype(bf16._inference_network(X.size)) == "float32"
    large = bf16._inference_network(_inference.BFLOAT16_MIN_FRAMES)
    fast = native_bfloat16() and not gpu_available()
    assert compute_dtype(large) == ("bfloat16" if fast else "float32")


def test_native_dilated_copy_predicts_as_the_trained_network_and_follows_its_training(sim):
    # on a CPU under TensorFlow, predict runs a copy of the network whose dilated
    # convolutions are one op each: the same rates as the Keras network itself
    import keras

    from calgan_sklearn.models._base import gpu_available
    from calgan_sklearn.models._inference import NativeDilatedConv1D, inference_function

    params = {**TINY, "epochs": 1, "inference_dtype": "float32", "warm_start": True}
    est = DeepSpikeInference(**params).fit(sim.calcium[:4], sim.spikes[:4])
    X = sim.calcium[:2, :2000].astype(np.float32)
    network = est._inference_network(X.size)
    native = isinstance(network.get_layer("dilated_1"), NativeDilatedConv1D)
    assert native == (keras.backend.backend() == "tensorflow" and not gpu_available())
    x = np.random.default_rng(0).normal(size=(2, 3000, 6)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(inference_function(network)(x)),
        np.asarray(est.model_(x, training=False)),
        rtol=1e-4,
        atol=1e-6,
    )
    # trained further in place (warm start), the network gets a fresh copy
    before = est.predict(X)
    est.fit(sim.calcium[:4], sim.spikes[:4])
    after = est._inference_network(X.size)
    np.testing.assert_allclose(
        np.asarray(inference_function(after)(x)),
        np.asarray(est.model_(x, training=False)),
        rtol=1e-4,
        atol=1e-6,
    )
    assert not np.allclose(est.predict(X), before)


def test_many_fitted_networks_do_not_log_a_retracing_warning():
    # a grid search or cross-validation makes one graph function per fitted
    # network; TensorFlow must not take them for one function traced again and
    # again ("5 out of the last 5 calls ... triggered tf.function retracing")
    import logging

    import keras

    from calgan_sklearn.models._inference import inference_function

    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow's tracing warning")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        x = np.zeros((2, 64, 1), np.float32)
        for _ in range(7):
            inp = keras.Input((None, 1))
            network = keras.Model(inp, keras.layers.Conv1D(1, 3, padding="same")(inp))
            out = inference_function(network)(x)
            np.testing.assert_allclose(np.asarray(out), np.asarray(network(x)), atol=1e-6)
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if "retracing" in r.getMessage()]


def test_load_refuses_a_network_that_does_not_match_the_parameters(tiny_fitted, tmp_path):
    import json

    path = tiny_fitted.save(tmp_path / "model")
    meta = json.loads((path / "estimator.json").read_text())
    # the saved network has one member; an undistilled ensemble of 3 has three
    meta["params"].update(ensemble_size=3, distill_epochs=0)
    (path / "estimator.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"ensemble_size=3.*train and save the model again"):
        DeepSpikeInference.load(path)


@pytest.mark.parametrize(
    "name, X",
    [
        ("constant", np.full((2, 3000), 5.0)),
        ("tiny scale", 1e-9 * np.random.default_rng(0).normal(size=(2, 3000))),
        ("very short", np.random.default_rng(0).normal(size=(2, 3))),
    ],
)
def test_degenerate_traces_give_finite_rates(tiny_fitted, name, X):
    rates = tiny_fitted.predict(X)
    assert rates.shape == X.shape and np.all(np.isfinite(rates)) and np.all(rates >= 0)


@pytest.mark.slow
def test_units_decide_whether_the_dff_scale_reaches_the_network(tiny_fitted, sim):
    from calgan_sklearn.models._inference import _CropDataset, _RateBank

    (z,), noise = normalize_traces([sim.calcium[0, :3000]])
    bank = _RateBank(25.0, [z], [np.zeros_like(z)], noise, dff_noise=[0.01])
    ds = _CropDataset([bank], crop_length=64, batch_size=400, steps=1, noise_range=(2.0, 2.0))
    x = ds[0][0]
    shown = x[:, 0, 4] == 1.0
    # flag 1 and log10(0.01 * 2) + 2: the noise augmentation doubled the dF/F noise
    np.testing.assert_allclose(x[shown, 0, 5], np.log10(0.02) + 2.0, rtol=1e-5)
    # 30% of the crops are shown without it, as traces in arbitrary units are
    assert 0.2 < 1.0 - shown.mean() < 0.4 and np.all(x[~shown, 0, 4:] == 0.0)
    X = sim.calcium[8:10]
    dff = _refit_at(tiny_fitted, 100.0).predict(X)
    arbitrary = _refit_at(tiny_fitted, 100.0).set_params(units="arbitrary").predict(X)
    assert dff.shape == arbitrary.shape and not np.allclose(dff, arbitrary)
    with pytest.raises(ValueError, match="'dff' or 'arbitrary' per trace"):
        DeepSpikeInference(**TINY).fit(X, sim.spikes[8:10], units=["dff", "volts"])
    est = DeepSpikeInference(**TINY).fit(X, sim.spikes[8:10], units=["dff", "arbitrary"])
    assert est.predict(X).shape == X.shape


@pytest.mark.slow
def test_sample_weight_and_units_work_with_a_validation_split(sim):
    X, y = sim.calcium[:6, :2000], sim.spikes[:6, :2000]
    params = {**TINY, "epochs": 2, "validation_fraction": 0.34, "patience": 5}
    w = np.array([1.0, 0.05, 1.0, 0.05, 1.0, 0.05])
    units = ["dff", "arbitrary"] * 3
    est = DeepSpikeInference(**params).fit(X, y, sample_weight=w, units=units)
    assert len(est.history_["val_loss"]) == est.n_iter_ == 2
    # the weights decide which crops are drawn: other weights, another model;
    # only their ratios count
    rates = est.predict(X)
    same = DeepSpikeInference(**params).fit(X, y, sample_weight=3 * w, units=units)
    np.testing.assert_allclose(same.predict(X), rates, rtol=1e-5, atol=1e-7)
    other = DeepSpikeInference(**params).fit(X, y, sample_weight=w[::-1], units=units)
    assert not np.allclose(other.predict(X), rates, rtol=1e-3, atol=1e-5)
    assert not any(k.startswith("_") and k != "_seed" for k in vars(est))


def test_per_trace_fit_arguments_follow_their_traces_into_the_split():
    X = np.repeat(np.arange(10.0)[:, None], 50, axis=1)
    est = DeepSpikeInference(**TINY, validation_fraction=0.3)
    units = np.array(["dff", "arbitrary"] * 5, dtype=object)
    train, val = est._split_validation(X, X, 0, sample_weight=np.arange(10.0), units=units)
    for part, n in ((train, 7), (val, 3)):
        Xp, yp, fit_params = part
        rows = Xp[:, 0].astype(int)
        assert len(rows) == n and np.array_equal(yp, Xp)
        np.testing.assert_array_equal(fit_params["sample_weight"], rows)
        np.testing.assert_array_equal(fit_params["units"], units[rows])
    assert sorted(np.r_[train[0][:, 0], val[0][:, 0]]) == list(range(10))


def test_a_split_part_without_weight_is_refused(sim):
    X, y = sim.calcium[:4, :2000], sim.spikes[:4, :2000]
    # one trace of four is held out: whichever it is, one part has no weight
    with pytest.raises(ValueError, match=r"sample_weight is zero for all \d traces of the"):
        DeepSpikeInference(**TINY, validation_fraction=0.25).fit(
            X, y, sample_weight=[1.0, 0.0, 0.0, 0.0]
        )


def test_floor_percentile_removes_the_silent_floor_and_fixes_counts_of_sparse_neurons(
    tiny_fitted,
):
    # trained on neurons firing at 1 Hz, predicting neurons firing at 0.1 Hz:
    # the floor the network keeps in silence inflates the count
    sparse = make_calcium(**{**SIM, "n_neurons": 4, "firing_rate": 0.1, "random_state": 1})
    # (groups of frames spread evenly, so the floor shows as one constant per frame)
    est = pickle.loads(pickle.dumps(tiny_fitted)).set_params(refine_timing=False)
    raw = est.set_params(floor_percentile=None).predict(sparse.calcium)
    floored = est.set_params(floor_percentile=20).predict(sparse.calcium)
    assert np.all(floored >= 0) and np.all(floored <= raw + 1e-6)
    for r, f in zip(raw, floored):
        # where the rate stays above it, the floor is one constant: the 20th percentile
        gap = (r - f)[f > 0]
        assert np.ptp(gap) < 1e-6
        np.testing.assert_allclose(gap[0], np.percentile(r, 20), rtol=0.05)
    true = sparse.spikes.sum()
    assert abs(floored.sum() - true) < abs(raw.sum() - true)
    # and the default is on
    assert DeepSpikeInference().floor_percentile == 20


def test_calibrate_counts_matches_the_ground_truth_count_and_scales_rates_only(tiny_fitted, sim):
    est = pickle.loads(pickle.dumps(tiny_fitted))
    X, y = _ragged(sim.calcium[8:11]), sim.spikes[8:11]
    raw = est.predict(X)
    assert est.calibrate_counts(X, y) is est
    true = np.nansum(np.where(np.isnan(X), np.nan, y))
    np.testing.assert_allclose(est.count_scale, true / np.nansum(raw, dtype=np.float64))
    scaled = est.predict(X)
    # the count of the calibration traces is the ground truth's; the shape of the rates is not
    np.testing.assert_allclose(np.nansum(scaled, dtype=np.float64), true, rtol=1e-4)
    np.testing.assert_allclose(scaled, raw * est.count_scale, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.isnan(scaled), np.isnan(X))
    # other neurons get the same factor
    other = sim.calcium[11:13]
    np.testing.assert_allclose(
        est.predict(other), tiny_fitted.predict(other) * est.count_scale, rtol=1e-5, atol=1e-7
    )
    # the parameter travels with clone, pickle and save/load, and set_params undoes it
    assert clone(est).count_scale == est.count_scale
    assert tiny_fitted.count_scale == 1.0


def test_calibrate_counts_survives_save_and_load(tiny_fitted, sim, tmp_path):
    from calgan_sklearn import load_model

    est = pickle.loads(pickle.dumps(tiny_fitted)).set_params(count_scale=0.5)
    est.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.count_scale == 0.5
    np.testing.assert_allclose(back.predict(sim.calcium[8:9]), est.predict(sim.calcium[8:9]))


def test_calibrate_counts_warns_when_its_scale_is_used_in_other_units(tiny_fitted, sim, tmp_path):
    from calgan_sklearn import load_model

    est = pickle.loads(pickle.dumps(tiny_fitted)).set_params(units="dff")
    est.calibrate_counts(sim.calcium[8:11], sim.spikes[8:11])
    assert est.count_units_ == "dff"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in the units it was made in: no warning
        est.predict(sim.calcium[11:12])
    est.save(tmp_path / "m")
    for model in (est, load_model(tmp_path / "m")):
        model.set_params(units="arbitrary")
        with pytest.warns(UserWarning, match="read in dF/F.*units='arbitrary'.*--units dff"):
            rates = model.predict(sim.calcium[11:12])
        assert np.isfinite(rates).all()  # still applied, with the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.set_params(count_scale=1.0).predict(sim.calcium[11:12])  # no scale, nothing to warn
        # calibrated again in the new units: the record follows
        est.calibrate_counts(sim.calcium[8:11], sim.spikes[8:11]).predict(sim.calcium[11:12])
    assert est.count_units_ == "arbitrary"


def test_calibrate_counts_refuses_what_cannot_set_a_scale(tiny_fitted, sim):
    est = pickle.loads(pickle.dumps(tiny_fitted))
    with pytest.raises(ValueError, match="no spikes"):
        est.calibrate_counts(sim.calcium[8:10], np.zeros_like(sim.calcium[8:10]))
    with pytest.raises(ValueError, match="shape"):
        est.calibrate_counts(sim.calcium[8:10], sim.spikes[8:9])
    assert est.count_scale == 1.0  # nothing half-set
    few = np.zeros_like(sim.calcium[8:9])
    few[0, [100, 900]] = 1
    with pytest.warns(UserWarning, match="rests on 2 spikes"):
        est.calibrate_counts(sim.calcium[8:9], few)
    with pytest.raises(ValueError, match="count_scale"):
        est.set_params(count_scale=0).predict(sim.calcium[8:9])
    with pytest.raises(NotFittedError):
        DeepSpikeInference().calibrate_counts(sim.calcium[:1], sim.spikes[:1])


def test_calibrate_timing_moves_spikes_within_groups_and_keeps_counts(tiny_fitted, sim):
    est = pickle.loads(pickle.dumps(tiny_fitted))  # 100 Hz: groups of 5 frames
    X, y = _ragged(sim.calcium[8:11]), sim.spikes[8:11]
    other = _ragged(sim.calcium[9:12], cut=(0, 2000, 0))
    rule = est.predict(other)
    assert est.calibrate_timing(X, y) is est
    assert est.timing_coef_.shape == (40,) and np.isfinite(est.timing_coef_).all()
    learned = est.predict(other)
    np.testing.assert_array_equal(np.isnan(learned), np.isnan(other))
    # only the timing changes: each trace's count is the rule's
    np.testing.assert_allclose(np.nansum(learned, axis=1), np.nansum(rule, axis=1), rtol=1e-4)
    assert np.nanmax(np.abs(learned - rule)) > 0.05 * np.nanmax(rule)
    # the placement follows the ground truth: more of each spike on its own frame
    spikes = (np.nan_to_num(sim.spikes[9:12]) > 0) & ~np.isnan(other)
    assert learned[spikes].sum() > rule[spikes].sum()
    assert not hasattr(tiny_fitted, "timing_coef_")


def test_calibrate_timing_survives_pickle_and_save_load_and_a_new_fit_drops_it(
    tiny_fitted, sim, tmp_path
):
    from calgan_sklearn import load_model

    est = pickle.loads(pickle.dumps(tiny_fitted)).calibrate_timing(
        sim.calcium[8:11], sim.spikes[8:11]
    )
    expected = est.predict(sim.calcium[11:12])
    est.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    np.testing.assert_array_equal(back.timing_coef_, est.timing_coef_)
    assert back.timing_fs_ == est.timing_fs_ == 100.0
    np.testing.assert_allclose(back.predict(sim.calcium[11:12]), expected, rtol=1e-5, atol=1e-7)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict(sim.calcium[11:12]), expected, rtol=1e-5, atol=1e-7)
    # a fit from scratch is a new network: the old calibration does not apply to it
    est.set_params(epochs=1).fit(sim.calcium[:4], sim.spikes[:4])
    assert not hasattr(est, "timing_coef_") and not hasattr(est, "timing_fs_")


def test_calibrate_timing_warns_when_used_at_another_frame_rate(tiny_fitted, sim):
    est = pickle.loads(pickle.dumps(tiny_fitted)).calibrate_timing(
        sim.calcium[8:11], sim.spikes[8:11]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at its own rate: no warning
        est.predict(sim.calcium[11:12])
    est.set_params(fs=50.0)
    with pytest.warns(UserWarning, match="calibrated at 100 Hz.*fs=50 Hz"):
        rates = est.predict(sim.calcium[11:12])
    assert np.isfinite(rates).all()  # still applied, with the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no timing to place at 20 Hz: nothing to warn of
        est.set_params(fs=20.0).predict(sim.calcium[11:12])
        est.set_params(fs=50.0, refine_timing=False).predict(sim.calcium[11:12])
        del est.timing_coef_  # the calibration removed: the rule places, nothing to warn of
        est.set_params(refine_timing=True).predict(sim.calcium[11:12])


def test_calibrate_timing_refuses_what_it_cannot_learn(tiny_fitted, sim):
    est = pickle.loads(pickle.dumps(tiny_fitted))
    X, y = sim.calcium[8:10], sim.spikes[8:10]
    with pytest.raises(ValueError, match="no spikes"):
        est.calibrate_timing(X, np.zeros_like(X))
    with pytest.raises(ValueError, match="shape"):
        est.calibrate_timing(X, sim.spikes[8:9])
    with pytest.raises(ValueError, match="refine_timing=True"):
        pickle.loads(pickle.dumps(est)).set_params(refine_timing=False).calibrate_timing(X, y)
    with pytest.raises(ValueError, match="above 20 Hz"):
        pickle.loads(pickle.dumps(est)).set_params(fs=20.0).calibrate_timing(X, y)
    assert not hasattr(est, "timing_coef_")  # nothing half-set
    few = np.zeros_like(sim.calcium[8:9])
    few[0, [100, 900]] = 1
    with pytest.warns(UserWarning, match="rests on 2 spike frames"):
        est.calibrate_timing(sim.calcium[8:9], few)
    with pytest.raises(NotFittedError):
        DeepSpikeInference().calibrate_timing(X, y)


@pytest.mark.realdata
def test_calibrate_timing_on_three_real_neurons_improves_the_others(cascade_dir):
    from calgan_sklearn.datasets import load_cascade
    from calgan_sklearn.evaluation import score_rates
    from calgan_sklearn.pretrained import load_pretrained

    folder = cascade_dir / "DS12-GCaMP6s-m-V1-neuropil-corrected"  # 6 neurons, 158 Hz
    fs = float(np.median(load_cascade(folder, fs=100.0).fs_native))
    data = load_cascade(folder, fs=fs)
    calibrate = np.isin(data.neuron, np.unique(data.neuron)[:3])
    est = load_pretrained(fs=fs)
    X, y, neuron = data.calcium[~calibrate], data.spikes[~calibrate], data.neuron[~calibrate]
    rule = score_rates(y, est.predict(X), fs, neuron=neuron)["correlation"]
    est.calibrate_timing(data.calcium[calibrate], data.spikes[calibrate])
    learned = score_rates(y, est.predict(X), fs, neuron=neuron)["correlation"]
    assert learned > rule + 0.02, (rule, learned)
