import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import GroupKFold, cross_validate

from calgan_sklearn.metrics import (
    SCORERS,
    cascade_bias,
    cascade_error,
    noise_level,
    spikefinder_correlation,
)


def test_spikefinder_correlation_hand_computed():
    spikes = np.array([0, 1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 3, 1, 0], dtype=float)
    rates = np.array([0.1, 0.5, 0.2, 0, 0.3, 1.0, 0, 0, 0, 0.2, 0.1, 0.4, 0.9, 5.0])
    # groups of 4 after truncating 14 -> 12 samples: [1, 3, 3] and [0.8, 1.3, 0.7]
    expected = np.corrcoef([1, 3, 3], [0.8, 1.3, 0.7])[0, 1]
    assert spikefinder_correlation(spikes, rates) == pytest.approx(expected, abs=1e-12)


def test_spikefinder_correlation_drops_nan_where_either_is_nan(rng):
    spikes = rng.poisson(0.5, size=(1, 43)).astype(float)
    rates = spikes + rng.normal(0, 0.5, size=spikes.shape)
    spikes[0, [3, 17]] = np.nan
    rates[0, [5, 17, 30]] = np.nan
    spikes[0, 40:] = rates[0, 40:] = np.nan
    keep = ~(np.isnan(spikes) | np.isnan(rates))[0]
    s, r = spikes[0, keep], rates[0, keep]  # 36 samples -> 9 bins
    assert len(s) == 36
    expected = np.corrcoef(s.reshape(9, 4).sum(1), r.reshape(9, 4).sum(1))[0, 1]
    assert spikefinder_correlation(spikes, rates, average=False)[0] == pytest.approx(expected)


def test_spikefinder_correlation_per_trace_and_mean(rng):
    spikes = rng.poisson(0.2, size=(3, 400)).astype(float)
    rates = spikes + rng.normal(0, 0.5, size=spikes.shape)
    per = spikefinder_correlation(spikes, rates, average=False)
    assert per.shape == (3,)
    assert spikefinder_correlation(spikes, rates) == pytest.approx(per.mean())
    assert spikefinder_correlation(spikes, spikes) == pytest.approx(1.0)


def test_spikefinder_correlation_constant_prediction_is_zero_with_warning(rng):
    spikes = rng.poisson(0.2, size=(2, 400)).astype(float)
    rates = spikes.copy()
    rates[1] = 0.3
    with pytest.warns(UserWarning, match=r"trace\(s\) \[1\]"):
        per = spikefinder_correlation(spikes, rates, average=False)
    assert per[0] == pytest.approx(1.0) and per[1] == 0.0


def test_spikefinder_correlation_non_integer_bins_preserve_counts(rng):
    # at 30 Hz a 40 ms bin is 1.2 frames: rebinned, still perfect for identical inputs
    spikes = rng.poisson(0.3, size=(1, 300)).astype(float)
    assert spikefinder_correlation(spikes, spikes, fs=30.0) == pytest.approx(1.0)
    r = spikefinder_correlation(spikes, spikes + rng.normal(0, 1, spikes.shape), fs=30.0)
    assert -1 <= r < 1


def test_metrics_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        spikefinder_correlation(np.zeros((2, 10)), np.zeros((2, 9)))
    with pytest.raises(ValueError, match="shape"):
        cascade_error(np.zeros((2, 10)), np.zeros((1, 10)), fs=10.0)


def test_cascade_error_and_bias_hand_computed():
    spikes = np.zeros((1, 300))
    spikes[0, [40, 100, 101, 250]] = 1
    rates = np.full((1, 300), 0.01)
    y = gaussian_filter1d(spikes[0], 0.2 * 50.0)
    err = np.abs(rates[0] - y).sum() / y.sum()
    bias = (rates[0] - y).sum() / y.sum()
    assert cascade_error(spikes, rates, fs=50.0) == pytest.approx(err)
    assert cascade_bias(spikes, rates, fs=50.0) == pytest.approx(bias)
    assert bias == pytest.approx(3 / 4 - 1)  # 3 predicted vs 4 true spikes


def test_cascade_error_perfect_and_empty_trace():
    spikes = np.zeros((2, 200))
    spikes[0, [20, 150]] = 1
    assert cascade_error(spikes[:1], spikes[:1], fs=100.0, smooth_prediction=True) == 0
    with pytest.warns(UserWarning, match="without spikes"):
        per = cascade_bias(spikes, spikes, fs=100.0, average=False, smooth_prediction=True)
    assert per[0] == pytest.approx(0.0) and np.isnan(per[1])


def test_noise_level_matches_definition_and_ignores_padding(rng):
    x = rng.normal(0, 0.1, size=(2, 1000))
    x[1, 600:] = np.nan
    nu = noise_level(x, fs=30.0)
    expected = 100 * np.median(np.abs(np.diff(x[1, :600]))) / np.sqrt(30.0)
    assert nu[1] == pytest.approx(expected)
    # white noise: nu = 100 * sqrt(2) * 0.6745 * sigma / sqrt(fs)
    assert nu[0] == pytest.approx(100 * 0.954 * 0.1 / np.sqrt(30.0), rel=0.1)


class _ShiftRegressor(RegressorMixin, BaseEstimator):
    """Trace-level predictor: the spike train itself, delayed by ``shift`` frames."""

    def __init__(self, shift=0):
        self.shift = shift

    def fit(self, X, y):
        self.is_fitted_ = True
        return self

    def predict(self, X):
        return np.roll(X, self.shift, axis=1)


def test_scorers_work_in_cross_validate(rng):
    spikes = rng.poisson(0.1, size=(8, 400)).astype(float)
    groups = np.repeat(["a", "b", "c", "d"], 2)
    good = cross_validate(
        _ShiftRegressor(0), spikes, spikes, groups=groups, cv=GroupKFold(2), scoring=SCORERS
    )
    bad = cross_validate(
        _ShiftRegressor(37), spikes, spikes, groups=groups, cv=GroupKFold(2), scoring=SCORERS
    )
    assert np.allclose(good["test_spikefinder"], 1.0)
    assert np.all(bad["test_spikefinder"] < 0.5)
    # error is negated: greater is better
    assert np.all(good["test_cascade_error"] > bad["test_cascade_error"])


def test_cascade_error_and_bias_pool_trials_per_neuron():
    from calgan_sklearn.metrics import cascade_bias, cascade_error

    spikes = np.zeros((3, 200))
    spikes[0, 50] = 1
    spikes[2, [20, 90, 150]] = 1
    rates = spikes.copy()
    rates[1, 100] = 1  # a spike predicted in neuron "a"'s silent trial counts against "a"
    bias = cascade_bias(spikes, rates, fs=100, groups=["b", "a", "a"], average=False)
    np.testing.assert_allclose(bias, [0.0, 1 / 3], atol=1e-12)
    err = cascade_error(spikes, rates, fs=100, groups=["b", "a", "a"], average=False)
    assert err.shape == (2,) and err[1] > 0
    with pytest.raises(ValueError, match="one label per trace"):
        cascade_bias(spikes, rates, fs=100, groups=["a", "b"])
