"""Where do a model's extra spikes come from? Predicted spikes far from any true spike.

Usage::

    python benchmarks/bench_heldout.py --folds 1 --save-models /tmp/m
    python benchmarks/diagnose_bias.py /tmp/m/fold1 DS31-GCaMP8m-m-V1 spikefinder-4

For each dataset (at its native rate, as in bench_heldout.py) prints the
predicted / true spike count (deep model and OASIS AR(1) with its scale fitted on
the same dataset, an upper bound for OASIS), the share of the predicted spikes
that lie more than 0.3 s from any true spike, and the mean predicted rate (Hz)
in those silent frames: a constant floor shows up as a large share at a rate
close to the training data's mean rate.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402


def far_from_spikes(spikes, fs, seconds=0.3):
    """Mask of frames more than ``seconds`` from any frame with a spike."""
    from scipy.ndimage import maximum_filter1d

    width = 2 * int(round(seconds * fs)) + 1
    near = maximum_filter1d((np.nan_to_num(spikes) > 0).astype(np.uint8), width, axis=1)
    return (near == 0) & np.isfinite(spikes)


def describe(name, y, rates, fs):
    far = far_from_spikes(y, fs)
    total = np.nansum(rates)
    print(
        f"  {name:6s} predicted/true {total / np.nansum(y):5.2f}   "
        f"share far from spikes {np.nansum(np.where(far, rates, 0)) / total:5.2f}   "
        f"rate there {np.nanmean(rates[far]) * fs:5.2f} Hz   "
        f"(true rate {np.nansum(y) / np.isfinite(y).sum() * fs:5.2f} Hz)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)

    from calgan_sklearn import load_model
    from calgan_sklearn.baselines import OASIS

    deep = load_model(args.model)
    print(f"model {args.model}: mean training rate {deep.mean_rate_:.2f} Hz")
    for name in args.datasets:
        test = load_one(args.data, name, None)
        X, y, fs = test.calcium, test.spikes, float(test.fs)
        print(f"{name} at {fs:.1f} Hz, {len(X)} traces")
        describe("deep", y, deep.set_params(fs=fs).predict(X), fs)
        describe("OASIS", y, OASIS(fs=fs).fit(X, y).predict(X), fs)


if __name__ == "__main__":
    main()
