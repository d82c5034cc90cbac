"""Benchmark DeepSpikeInference against OASIS: accuracy (LODO), speed and memory.

Usage::

    python benchmarks/bench_inference.py                  # LODO over 9 datasets + speed
    python benchmarks/bench_inference.py --folds spikefinder-4,spikefinder-6
    python benchmarks/bench_inference.py --skip-lodo      # speed of the pretrained model
    python benchmarks/bench_inference.py --seed 1 --param ensemble_size=1  # one network

Accuracy: leave-one-dataset-out over ../shared/data (SpikeFinder 4, 5, 6 and the
six CASCADE datasets resampled to 100 Hz). For each held-out dataset the deep
estimator (default parameters, datasets balanced with ``sample_weight``) is
trained on the other eight; OASIS (AR(1), L1, per-trace parameters) is fitted on
the same eight only to calibrate its scale. Scores are the SpikeFinder
correlation (40 ms bins) averaged over the held-out traces (one trace per
SpikeFinder neuron, one per CASCADE trial), CASCADE error and bias.

Speed: both estimators predict the same traces (all 192, 3.5 million frames)
in the same process, each timed three times (best kept); frames per second of
the input. Deep inference runs TensorFlow's CPU kernels on every core; OASIS is
single-threaded, as the package runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_pretrained import DEFAULT_DATA, load_all_data, peak_rss_mb  # noqa: E402


def run_lodo(data, folds, params, seed):
    """Hold out each dataset of ``folds`` in turn; one printed line per dataset.

    Both estimators go through :func:`calgan_sklearn.evaluation.cross_evaluate`
    (deep with ``sample_weight`` balancing the training datasets; mean
    correlation, CASCADE error and bias over the held-out traces, prediction
    not smoothed).
    """
    from calgan_sklearn.baselines import OASIS
    from calgan_sklearn.datasets import dataset_weights
    from calgan_sklearn.evaluation import GroupFolds, cross_evaluate
    from calgan_sklearn.models._inference import DeepSpikeInference

    rows = []
    header = (
        f"{'held-out dataset':40s} {'n':>3s} {'deep r':>7s} {'OASIS r':>7s} {'deep err':>8s} "
        f"{'OASIS err':>9s} {'deep bias':>9s} {'OASIS bias':>10s} {'train s':>7s}"
    )
    print(header)
    print("-" * len(header))

    def report(fold):
        d, o = (fold[fold.method == m].iloc[0] for m in ("deep", "OASIS"))
        rows.append(
            (d.dataset, int(d.n_traces), d.correlation, d.error, d.bias)
            + (o.correlation, o.error, o.bias, d.fit_time_s)
        )
        print(
            f"{d.dataset:40s} {d.n_traces:3d} {d.correlation:7.3f} {o.correlation:7.3f} "
            f"{d.error:8.2f} {o.error:9.2f} {d.bias:+9.2f} {o.bias:+10.2f} {d.fit_time_s:7.0f}",
            flush=True,
        )

    estimators = {
        "deep": DeepSpikeInference(fs=data.fs, random_state=seed, **params),
        "OASIS": OASIS(p=1, penalty=1, fs=data.fs),
    }
    cross_evaluate(
        estimators,
        data.calcium,
        data.spikes,
        groups=data.dataset,
        fs=data.fs,
        cv=GroupFolds([[name] for name in folds]),
        params={"deep": {"sample_weight": dataset_weights(data.calcium, data.dataset)}},
        smooth_prediction=False,
        progress=False,
        on_fold=report,
    )
    deep_r = np.array([r[2] for r in rows])
    oasis_r = np.array([r[5] for r in rows])
    print("-" * len(header))
    print(
        f"{'mean over datasets':40s} {'':3s} {deep_r.mean():7.3f} {oasis_r.mean():7.3f}   "
        f"deep beats OASIS on {(deep_r > oasis_r).sum()}/{len(rows)} datasets"
    )
    return rows


def _parse_params(items):
    """``["ensemble_size=1", "lowpass_min_fs=None"]`` -> ``{"ensemble_size": 1, ...}``."""
    import ast

    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--param expects NAME=VALUE, got {item!r}")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value  # a bare string, e.g. loss=binned_mse
    return params


def _trim(X, y):
    from calgan_sklearn.signal import trace_lengths

    n = int(trace_lengths(X).max())
    return X[:, :n], y[:, :n]


def run_speed(data, deep, repeats=3):
    from calgan_sklearn.baselines import OASIS
    from calgan_sklearn.signal import trace_lengths

    X = data.calcium
    frames = int(trace_lengths(X).sum())
    oasis = OASIS(p=1, penalty=1, calibrate=False, fs=data.fs).fit(X[:1])
    deep.predict(X[:2])  # warm-up (first call builds the TensorFlow graph state)
    best = {"deep": np.inf, "oasis": np.inf}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for key, est in (("deep", deep), ("oasis", oasis)):
            t0 = time.perf_counter()
            est.predict(X)
            best[key] = min(best[key], time.perf_counter() - t0)
    fps = {k: frames / v for k, v in best.items()}
    print(
        f"\nspeed on the same {len(X)} traces ({frames:,} frames at {data.fs:g} Hz), "
        f"best of {repeats}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(f"  deep  : {best['deep']:7.2f} s  {fps['deep']:12,.0f} frames/s")
    print(f"  OASIS : {best['oasis']:7.2f} s  {fps['oasis']:12,.0f} frames/s")
    print(f"  deep / OASIS = {fps['deep'] / fps['oasis']:.2f} (target >= 0.5)")
    return fps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", default=None, help="comma-separated datasets to hold out")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lodo", action="store_true")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="DeepSpikeInference parameter for the LODO folds, e.g. ensemble_size=1 "
        "or lowpass_min_fs=None (repeat for several)",
    )
    args = parser.parse_args(argv)

    from calgan_sklearn.pretrained import load_pretrained

    data = load_all_data(args.data)
    print(f"data: {len(data.calcium)} traces, datasets {', '.join(np.unique(data.dataset))}\n")
    params = {} if args.epochs is None else {"epochs": args.epochs}
    params.update(_parse_params(args.param))
    if params:
        print(f"deep estimator parameters: {params}")
    if not args.skip_lodo:
        folds = args.folds.split(",") if args.folds else list(np.unique(data.dataset))
        run_lodo(data, folds, params, args.seed)
    try:
        deep = load_pretrained(fs=data.fs)
        what = "pretrained model"
    except FileNotFoundError:
        from calgan_sklearn.models._inference import DeepSpikeInference

        deep = DeepSpikeInference(fs=data.fs, epochs=1, random_state=0)
        deep.fit(*_trim(data.calcium[:20], data.spikes[:20]))
        what = "freshly fitted default-size model (no pretrained model found)"
    print(f"\nspeed of the {what}")
    run_speed(data, deep)
    print(f"\npeak resident memory of this benchmark process: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
