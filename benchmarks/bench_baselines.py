"""Classical baselines on the shared real data: correlation per dataset and speed.

Prints, for every SpikeFinder and CASCADE dataset in ../shared/data (CASCADE
resampled to 100 Hz):

- the mean SpikeFinder correlation of each baseline, leave-one-dataset-out
  within each collection (the calibration scale and Wiener's time constant are
  learnt on the other datasets only);
- inference speed (frames per second) of every baseline on the same traces in
  the same process, as a ratio to OASIS AR(1).

Run: ``python benchmarks/bench_baselines.py [--data ../shared/data] [--max-frames N]``
(about 5 minutes on 2 CPU cores with the default 12000 frames = 2 min per trace).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from calgan_sklearn.baselines import OASIS, DerivativeDetector, WienerDeconvolution
from calgan_sklearn.benchmark import run_benchmark
from calgan_sklearn.datasets import load_cascade, load_spikefinder
from calgan_sklearn.datasets._auto import concat_bunches

ROOT = Path(__file__).resolve().parents[1]


def baselines(l0=False):
    """The compared baselines; OASIS L0 (about 10x slower than L1) only where asked."""
    est = {"OASIS AR(1)": OASIS(), "OASIS AR(2)": OASIS(p=2)}
    if l0:
        est["OASIS AR(1) L0"] = OASIS(penalty=0)
    return {**est, "Wiener": WienerDeconvolution(), "Derivative": DerivativeDetector()}


def crop(bunch, max_frames):
    """Keep at most ``max_frames`` frames per trace (CASCADE recordings are hours long)."""
    if max_frames and bunch.calcium.shape[1] > max_frames:
        bunch.calcium = bunch.calcium[:, :max_frames]
        bunch.spikes = bunch.spikes[:, :max_frames]
    return bunch


def load_collections(data, max_frames):
    collections = {}
    if (data / "spikefinder").is_dir():
        collections["spikefinder"] = crop(load_spikefinder(data / "spikefinder"), max_frames)
    if (data / "cascade").is_dir():
        folders = sorted(p for p in (data / "cascade").iterdir() if p.is_dir())
        bunches = [crop(load_cascade(p, fs=100.0), max_frames) for p in folders]
        collections["cascade"] = concat_bunches(bunches)
    return collections


def speed(traces, n_repeat=3):
    """Best-of-n inference frames/s of every baseline on the same traces."""
    n_frames = int(np.isfinite(traces).sum())
    out = {}
    for name, est in baselines(l0=True).items():
        est.set_params(calibrate=False).fit(traces[:1])
        best = np.inf
        for _ in range(n_repeat):
            t0 = time.perf_counter()
            est.predict(traces)
            best = min(best, time.perf_counter() - t0)
        out[name] = n_frames / best
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--max-frames", type=int, default=12_000, help="frames kept per trace (100 Hz)"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    pd.set_option("display.width", 160)

    tables = []
    collections = load_collections(args.data, args.max_frames)
    for name, bunch in collections.items():
        t0 = time.perf_counter()
        est = baselines(l0=name == "spikefinder")
        table = run_benchmark(data=bunch, estimators=est, progress=False)
        print(f"\n== {name}: leave-one-dataset-out ({time.perf_counter() - t0:.0f} s) ==")
        pivot = table.pivot(index="dataset", columns="method", values="correlation")
        pivot = pivot[list(est)]
        pivot.loc["mean"] = pivot.mean()
        print(pivot.round(3).to_string())
        tables.append(table.assign(collection=name))

    all_results = pd.concat(tables)
    print("\n== CASCADE error / bias (mean over datasets, prediction smoothed like truth) ==")
    print(all_results.groupby(["collection", "method"])[["error", "bias"]].mean().round(2))

    sf = collections.get("spikefinder") or next(iter(collections.values()))
    fps = speed(sf.calcium)
    n = int(np.isfinite(sf.calcium).sum())
    print(f"\n== inference speed on {sf.calcium.shape[0]} traces, {n} frames ==")
    ref = fps["OASIS AR(1)"]
    for name, value in fps.items():
        print(f"{name:16s} {value:12,.0f} frames/s   x{value / ref:6.2f} vs OASIS AR(1)")


if __name__ == "__main__":
    main()
