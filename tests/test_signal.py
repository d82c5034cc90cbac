"""The trace-signal module: one noise estimate, one normalisation, NaN padding."""

import numpy as np
import pytest

from calgan_sklearn.metrics import spikefinder_correlation
from calgan_sklearn.signal import (
    group_means,
    map_traces,
    noise_sd,
    normalize,
    pad_traces,
    spread_groups,
    spread_groups_by_rise,
    trace_lengths,
    unpad_traces,
)


def test_noise_sd_of_white_noise_and_its_edge_cases(rng):
    x = rng.normal(scale=3.0, size=(4, 20_000))
    np.testing.assert_allclose(noise_sd(x), 3.0, rtol=0.05)
    assert noise_sd(np.ones(100)) == 1e-12  # constant: tiny, never zero
    assert noise_sd([5.0]) == 1.0  # one frame: no steps at all
    # fewer than 8 steps, or mostly identical steps: the root mean square step
    assert noise_sd([0.0, 1.0, 0.0]) == pytest.approx(np.sqrt(0.5))
    steps = np.r_[np.zeros(50), np.ones(50)]
    assert noise_sd(steps) == pytest.approx(np.sqrt(1 / 99 / 2))


def test_noise_sd_of_windows_equals_noise_sd_of_each(rng):
    W = rng.normal(size=(50, 32))
    W[:3] = 2.0  # constant windows
    W[3:6, 16:] += 5.0  # a step in the middle
    per_window = [noise_sd(w) for w in W]
    np.testing.assert_array_equal(noise_sd(W, axis=1), per_window)
    np.testing.assert_array_equal(noise_sd(W.T, axis=0), per_window)


def test_noise_sd_of_nan_padded_traces_is_that_of_their_frames(rng):
    # the package's trace convention: traces of different lengths, NaN-padded
    X = rng.normal(scale=2.0, size=(3, 4000))
    X[1, 1500:] = np.nan
    X[2] = np.nan
    sd = noise_sd(X)
    assert sd[0] == noise_sd(X[0]) and sd[1] == noise_sd(X[1, :1500])
    assert 1.8 < sd[1] < 2.2 and np.isnan(sd[2])
    np.testing.assert_array_equal(noise_sd(X.T, axis=0), sd)


@pytest.mark.parametrize("method", ["noise", "zscore", "spread"])
def test_normalize_makes_units_irrelevant_and_constant_traces_finite(rng, method):
    x = np.cumsum(rng.normal(size=500)) + rng.normal(size=500)
    a = normalize(x, method, baseline=10)[0]
    b = normalize(37.0 * x + 5.0, method, baseline=10)[0]
    np.testing.assert_allclose(a, b, atol=1e-9)
    z = normalize(np.full((2, 40), 3.0), method, baseline=50, axis=1)[0]
    np.testing.assert_array_equal(z, 0.0)


def test_padding_round_trip():
    rows = [np.arange(3.0), np.arange(1.0), np.zeros(0)]
    X = pad_traces(rows)
    assert X.shape == (3, 3)
    np.testing.assert_array_equal(trace_lengths(X), [3, 1, 0])
    for a, b in zip(unpad_traces(X), rows):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(map_traces(X, lambda x: x + 1), X + 1)


def _fast_indicator(rng, n=12_000, fs=100.0, noise=0.02, rate=0.5):
    """Spikes and a fast-rising, 0.3 s-decaying calcium trace at ``fs``."""
    spikes = rng.poisson(rate / fs, n).astype(float)
    kernel = np.exp(-np.arange(int(2 * fs)) / (0.3 * fs))
    calcium = np.convolve(spikes, kernel)[:n] + rng.normal(0, noise, n)
    return spikes, calcium


def _group_totals(spikes, factor):
    return group_means(spikes, factor) * factor  # the ideal network: true counts per group


def test_spread_by_rise_keeps_the_count_and_places_spikes_within_a_group(rng):
    factor = 5
    spikes, calcium = _fast_indicator(rng)
    totals = _group_totals(spikes, factor)
    even = spread_groups(totals, factor, len(spikes))
    sharp = spread_groups_by_rise(totals, calcium, factor)
    assert sharp.dtype == np.float32 and sharp.shape == spikes.shape and np.all(sharp >= 0)
    assert sharp.sum() == pytest.approx(totals.sum(), rel=1e-5)  # counts unchanged

    # the rise of the clean trace puts the rate near the spike's own frame, which
    # spreading each group's count evenly cannot do: better SpikeFinder
    # correlation (40 ms bins, which do not line up with 50 ms groups)
    def score(rates):
        return spikefinder_correlation(spikes[None], rates[None], fs=100.0)

    assert score(sharp) > score(even) + 0.04
    # nothing of it moves farther than the smoothing and the neighbourhood
    far = np.convolve(spikes, np.ones(4 * factor + 1), mode="same") == 0
    assert sharp[far].sum() < 0.02 * sharp.sum()


def test_spread_by_rise_leaves_noisy_traces_smooth(rng):
    """Rises within the noise are ignored: a trace with no visible transients
    keeps the linear interpolation of its groups' rates, not noise-driven jitter."""
    factor = 4
    spikes, calcium = _fast_indicator(rng, noise=20.0)  # transients far below the noise
    totals = _group_totals(spikes, factor) + 0.1
    sharp = spread_groups_by_rise(totals, calcium, factor)
    even = spread_groups(totals, factor, len(spikes))
    # frame-to-frame changes stay of the size of the interpolation's
    assert np.std(np.diff(sharp)) < 2 * np.std(np.diff(even))
    assert sharp.sum() == pytest.approx(totals.sum(), rel=1e-5)


def test_spread_by_rise_is_the_same_in_blocks_and_passes_factor_one_through(rng):
    spikes, calcium = _fast_indicator(rng, n=5003)
    totals = _group_totals(spikes, 3)
    whole = spread_groups_by_rise(totals, calcium, 3)
    blocks = spread_groups_by_rise(totals, calcium, 3, block=700)
    np.testing.assert_allclose(blocks, whole, rtol=1e-5, atol=1e-7)
    assert whole.shape == (5003,)  # the last, shorter group is covered
    np.testing.assert_array_equal(
        spread_groups_by_rise(spikes, calcium, 1), spikes.astype(np.float32)
    )
