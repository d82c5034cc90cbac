"""The trace-signal module: one noise estimate, one normalisation, NaN padding."""

import numpy as np
import pytest

from calgan_sklearn.signal import (
    map_traces,
    noise_sd,
    normalize,
    pad_traces,
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
