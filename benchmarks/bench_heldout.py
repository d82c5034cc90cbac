"""Held-out evaluation over every dataset of ../shared/data: deep model vs OASIS AR(1).

Usage::

    python benchmarks/bench_heldout.py                      # all 8 folds (23 datasets)
    python benchmarks/bench_heldout.py --folds 1,5          # some folds
    python benchmarks/bench_heldout.py --epochs 4 --param ensemble_size=1   # quicker
    python benchmarks/bench_heldout.py --csv heldout.csv    # also write the table
    python benchmarks/bench_heldout.py --save-models runs/m  # keep each fold's model
    python benchmarks/bench_heldout.py --load-models runs/m --param floor_percentile=None
                                        # re-score saved models (no training)

Each of the 23 datasets (SpikeFinder 4, 5, 6 and the 20 CASCADE folders) is held
out exactly once, in one of the 8 folds of :data:`FOLDS`. A fold's deep model is
trained on the other folds' datasets at 100 Hz, datasets balanced (every dataset
gets the same share of training crops; SpikeFinder traces in arbitrary units,
CASCADE traces as dF/F). Folds are grouped so that close relatives
land in different folds: the two Chen et al. 2013 datasets (DS09, DS14), the two
Allen datasets (DS10, DS12), the in-vitro PV / SST pair (DS24, DS25), the OGB-1
interneuron pair (DS22, DS23) and the two R-CaMP datasets (DS18, DS21); each
fold mixes one large pyramidal-cell dataset, one other indicator and one
interneuron or red-indicator dataset. SpikeFinder 6 and DS17 hold the same
neurons (identical spike counts), so they are held out together, and SpikeFinder
6 is never trained on (``TRAIN_EXCLUDE``): its neurons are in DS17.

Every held-out dataset is then scored at its **native frame rate** (the median
rate of its files; SpikeFinder's published 100 Hz): the deep model predicts the
native-rate traces (``fs`` set to that rate), and OASIS AR(1) (L1, per-trace
parameters) deconvolves the same traces, its one scale calibrated on the
training datasets resampled to that same rate (their first 20 minutes each).
Scores per dataset: SpikeFinder correlation (40 ms bins) averaged over traces;
CASCADE error and bias (Gaussian-smoothed rates, sigma 0.2 s, prediction smoothed
too) per neuron (its trials pooled), median over the dataset's neurons; and
inference speed in frames per second of the native-rate input (same process,
same traces, each method timed once per dataset, one after the other, after a
one-trace warm-up) and, as a second figure, the speed of a second call on the
same traces (once a new input shape's one-off costs are paid).

The script first calls :func:`calgan_sklearn.tune_malloc` (glibc keeps freed memory
for the next training step); ``--system-malloc`` leaves glibc's defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import _parse_params  # noqa: E402
from train_pretrained import (  # noqa: E402
    DEFAULT_DATA,
    TRAIN_EXCLUDE,
    add_malloc_option,
    apply_malloc,
    dataset_names,
    load_all_data,
    load_one,
    peak_rss_mb,
)

#: The 8 folds; each of the 23 datasets is held out exactly once.
FOLDS = [
    ["DS31-GCaMP8m-m-V1", "spikefinder-4", "DS18-R-CaMP-m-CA3"],
    ["DS29-GCaMP7f-m-V1", "spikefinder-5", "DS22-OGB1-m-SST-V1"],
    ["DS10-GCaMP6f-m-V1-neuropil-corrected", "DS02-OGB1-2-m-V1", "DS21-R-CaMP-m-S1"],
    ["DS09-GCaMP6f-m-V1", "DS23-OGB1-m-PV-V1"],
    ["DS14-GCaMP6s-m-V1", "DS03-Cal520-m-S1", "DS27-GCaMP6f-m-PV-vivo-V1"],
    ["DS06-GCaMP6f-zf-aDp", "DS19-jRCaMP1a-m-V1", "DS24-GCaMP6f-m-PV-V1"],
    ["DS25-GCaMP6f-m-SST-V1", "DS20-jGECO1a-m-V1", "spikefinder-6", "DS17-GCaMP5k-m-V1"],
    ["DS12-GCaMP6s-m-V1-neuropil-corrected", "DS04-OGB1-zf-pDp"],
]


def run_fold(data, all_names, held_out, params, seed, train_fs=100.0, save=None, load=None):
    """Train the deep model without ``held_out``, score it and OASIS on each at its native rate.

    ``load``: a folder saved by an earlier run's ``save``; that fold model is
    scored instead of training one (``params`` are set on it, e.g. prediction
    parameters such as ``floor_percentile``).

    Both go through :func:`calgan_sklearn.evaluation.cross_evaluate` with the
    fold as :class:`~calgan_sklearn.evaluation.GroupFolds`: correlation averaged
    over traces; CASCADE error and bias pooling each neuron's trials before the
    ratio (as CASCADE scores neurons: a mean of per-trial ratios is dominated
    by short trials with one or two spikes), median over neurons.
    """
    from calgan_sklearn.baselines import OASIS
    from calgan_sklearn.datasets import dataset_weights
    from calgan_sklearn.datasets._auto import concat_bunches
    from calgan_sklearn.evaluation import GroupFolds, cross_evaluate
    from calgan_sklearn.models._inference import DeepSpikeInference

    train_names = [n for n in all_names if n not in held_out and n not in TRAIN_EXCLUDE]
    tests = {name: load_one(data, name, None) for name in held_out}  # native rates
    common = dict(per_neuron=True, warm_up=True, progress=False)
    # deep: trained at train_fs on the other folds' datasets; X also holds the
    # held-out ones at train_fs (their labels), which are scored on `tests` instead
    prefit = None
    if load is not None:
        from calgan_sklearn import load_model

        prefit = {"deep": [load_model(load).set_params(**params)]}
        train_names_deep = []  # nothing is trained: the held-out traces define the fold
    else:
        train_names_deep = train_names
    train = load_all_data(
        data, train_fs, names=[n for n in all_names if n in train_names_deep + held_out]
    )
    deep, fitted = cross_evaluate(
        {"deep": DeepSpikeInference(fs=train_fs, random_state=seed, **params)},
        train.calcium,
        train.spikes,
        groups=train.dataset,
        fs=train_fs,
        cv=GroupFolds([held_out], train_exclude=TRAIN_EXCLUDE),
        params={
            "deep": {
                "sample_weight": dataset_weights(train.calcium, train.dataset),
                "units": train.units,
            }
        },
        test_data=tests.__getitem__,
        return_estimators=True,
        prefit=prefit,
        **common,
    )
    del train
    if save is not None:
        fitted["deep"][0].save(save)
    rows = []
    for name in held_out:
        test = tests.pop(name)
        # OASIS: its scale calibrated on the training datasets at the test rate
        # (their first 20 min each: one scale needs no more, and 500 Hz data is big)
        tr = load_all_data(data, float(test.fs), names=train_names, max_s=1200.0)
        both = concat_bunches([tr, test])
        del tr
        oasis, oasis_fitted = cross_evaluate(
            {"OASIS": OASIS(p=1, penalty=1)},
            both.calcium,
            both.spikes,
            groups=both.dataset,
            fs=both.fs,
            cv=GroupFolds([[name]]),
            neurons=both.neuron,
            return_estimators=True,
            **common,
        )
        d, o = deep[deep.dataset == name].iloc[0], oasis.iloc[0]
        # a second call on the same traces: throughput once the one-off costs of
        # a new input shape (graph execution plans, first-touch memory) are paid
        deep_warm_s = _second_call_s(fitted["deep"][0], test)
        oasis_warm_s = _second_call_s(oasis_fitted["OASIS"][0], test)
        rows.append(
            dict(
                dataset=name,
                fs=d.fs,
                n_traces=int(d.n_traces),
                frames=int(d.n_frames),
                deep_r=d.correlation,
                oasis_r=o.correlation,
                deep_err=d.error,
                oasis_err=o.error,
                deep_bias=d.bias,
                oasis_bias=o.bias,
                deep_fps=d.frames_per_s,
                oasis_fps=o.frames_per_s,
                deep_s=d.predict_time_s,
                oasis_s=o.predict_time_s,
                deep_warm_s=deep_warm_s,
                oasis_warm_s=oasis_warm_s,
                train_s=d.fit_time_s,
            )
        )
        _print_row(rows[-1])
    return rows


def _second_call_s(model, test):
    """Seconds of ``model.predict`` on ``test``'s traces, called a second time."""
    from calgan_sklearn.evaluation import _predict_params

    with _predict_params(model, test):
        model.predict(test.calcium)
        t0 = time.perf_counter()
        model.predict(test.calcium)
        return time.perf_counter() - t0


HEADER = (
    f"{'held-out dataset':38s} {'Hz':>5s} {'n':>4s} {'deep r':>6s} {'OASIS r':>7s} "
    f"{'deep err':>8s} {'OASIS err':>9s} {'deep bias':>9s} {'OASIS bias':>10s} "
    f"{'deep fr/s':>10s} {'OASIS fr/s':>10s} {'train s':>7s}"
)


def _print_row(r):
    print(
        f"{r['dataset']:38s} {r['fs']:5.1f} {r['n_traces']:4d} {r['deep_r']:6.3f} "
        f"{r['oasis_r']:7.3f} {r['deep_err']:8.2f} {r['oasis_err']:9.2f} "
        f"{r['deep_bias']:+9.2f} {r['oasis_bias']:+10.2f} {r['deep_fps']:10.0f} "
        f"{r['oasis_fps']:10.0f} {r['train_s']:7.0f}",
        flush=True,
    )


def summarize(rows):
    import pandas as pd

    df = pd.DataFrame(rows)
    wins = int((df.deep_r > df.oasis_r).sum())
    margin = df.deep_r.mean() - df.oasis_r.mean()
    fps_deep = df.frames.sum() / df.deep_s.sum()
    fps_oasis = df.frames.sum() / df.oasis_s.sum()
    print("-" * len(HEADER))
    print(
        f"{'mean over ' + str(len(df)) + ' datasets':38s} {'':5s} {'':4s} {df.deep_r.mean():6.3f} "
        f"{df.oasis_r.mean():7.3f} {df.deep_err.mean():8.2f} {df.oasis_err.mean():9.2f} "
        f"{df.deep_bias.mean():+9.2f} {df.oasis_bias.mean():+10.2f}"
    )
    print(f"deep beats OASIS on {wins}/{len(df)} datasets; mean margin {margin:+.3f}")
    print(
        f"|bias|: deep median {df.deep_bias.abs().median():.2f}, max "
        f"{df.deep_bias.abs().max():.2f} ({int((df.deep_bias.abs() <= 0.5).sum())}/{len(df)} "
        f"within 0.5); OASIS median {df.oasis_bias.abs().median():.2f}"
    )
    print(
        f"speed over all held-out frames at native rates: deep {fps_deep:,.0f} frames/s, "
        f"OASIS {fps_oasis:,.0f} frames/s, deep / OASIS = {fps_deep / fps_oasis:.2f}"
    )

    def slower(deep_s, oasis_s):
        # deep / OASIS frames per second of each dataset (same frames for both)
        ratio = oasis_s / deep_s
        names = ", ".join(f"{n} {r:.2f}x" for n, r in zip(df.dataset, ratio) if r < 1)
        return f"deep slower on {int((ratio < 1).sum())}/{len(df)} datasets: {names or '-'}"

    print(slower(df.deep_s, df.oasis_s))
    overall = df.oasis_warm_s.sum() / df.deep_warm_s.sum()
    print(
        f"second call on the same traces: deep / OASIS = {overall:.2f} over all frames; "
        f"{slower(df.deep_warm_s, df.oasis_warm_s)}"
    )
    return df


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", default=None, help="comma-separated fold numbers (1-8)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None, help="write the table here")
    parser.add_argument(
        "--save-models", type=Path, default=None, help="save each fold's model in DIR/foldK"
    )
    parser.add_argument(
        "--load-models",
        type=Path,
        default=None,
        help="score the models saved by --save-models in DIR/foldK instead of training",
    )
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    apply_malloc(args)

    all_names = [n for fold in FOLDS for n in fold]
    present = set(dataset_names(args.data))
    if set(all_names) != present:
        raise SystemExit(
            f"FOLDS and {args.data} disagree: missing from FOLDS "
            f"{sorted(present - set(all_names))}, absent from the data "
            f"{sorted(set(all_names) - present)}"
        )
    picked = range(1, len(FOLDS) + 1)
    if args.folds:
        picked = [int(k) for k in args.folds.split(",")]
    params = {} if args.epochs is None else {"epochs": args.epochs}
    params.update(_parse_params(args.param))
    print(f"deep estimator parameters: {params or 'defaults'}; seed {args.seed}")
    print(HEADER)
    print("-" * len(HEADER))
    rows = []
    t0 = time.perf_counter()
    for k in picked:
        save = None if args.save_models is None else args.save_models / f"fold{k}"
        load = None if args.load_models is None else args.load_models / f"fold{k}"
        rows += run_fold(
            args.data, all_names, FOLDS[k - 1], params, args.seed, save=save, load=load
        )
    df = summarize(rows)
    print(
        f"wall time {time.perf_counter() - t0:.0f} s; peak resident memory "
        f"{peak_rss_mb():.0f} MB; load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} cores"
    )
    if args.csv is not None:
        df.to_csv(args.csv, index=False)
    return df


if __name__ == "__main__":
    main()
