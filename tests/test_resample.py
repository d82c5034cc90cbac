"""Moving traces between frame rates: lengths agree, no spike is lost."""

import numpy as np
import pytest

from calgan_sklearn.signal import (
    bin_spike_times,
    rebin_counts,
    resample_calcium,
    resample_traces,
)


@pytest.mark.parametrize(("fs_in", "fs_out"), [(158.0, 100.0), (30.0, 100.0), (100.0, 30.0)])
@pytest.mark.parametrize("n", [37, 1000, 1001])
def test_counts_preserved_and_lengths_match_calcium(rng, fs_in, fs_out, n):
    counts = rng.poisson(0.2, n).astype(float)
    rebinned = rebin_counts(counts, fs_in, fs_out)
    assert len(rebinned) == len(resample_calcium(rng.normal(size=n), fs_in, fs_out))
    assert rebinned.sum() == pytest.approx(counts.sum(), abs=1e-9)
    assert (rebinned >= -1e-12).all()


def test_bin_spike_times_puts_each_spike_in_nearest_frame():
    counts, outside = bin_spike_times([0.04, 0.11, 0.12, np.nan, 5.0], [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(counts, [1.0, 2.0, 0.0])
    assert outside == 1


def test_bin_spike_times_rejects_unsorted_frames():
    with pytest.raises(ValueError, match="strictly increasing"):
        bin_spike_times([0.1], [0.0, 0.2, 0.1])


def test_downsampling_does_not_alias_noise(rng):
    noise = rng.normal(size=20000)
    down = resample_calcium(noise, 158.0, 30.0)
    # white noise low-passed to the new Nyquist band keeps well under its variance
    assert down.std() < 0.7


def test_resample_traces_keeps_nan_padding(rng):
    X = rng.normal(size=(2, 300))
    X[1, 200:] = np.nan
    out = resample_traces(X, 100.0, 50.0)
    assert out.shape == (2, 150)
    assert np.isnan(out[1, 100:]).all() and np.isfinite(out[1, :100]).all()
    back = resample_traces(np.abs(X), 100.0, 50.0, kind="counts")
    assert np.nansum(back[1]) == pytest.approx(np.nansum(np.abs(X[1])))


def test_resample_traces_rejects_unknown_kind(rng):
    with pytest.raises(ValueError, match="kind must be"):
        resample_traces(rng.normal(size=(1, 10)), 100.0, 50.0, kind="spline")
