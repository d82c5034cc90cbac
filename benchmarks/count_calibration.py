"""Can a recording's own traces tell how far off the deep model's spike counts are?

Usage::

    python benchmarks/bench_heldout.py --save-models runs/m   # train and keep the 8 fold models
    python benchmarks/count_calibration.py runs/m             # ~1 min with saved models

Predicts every held-out dataset with its fold model at its native rate (as
``bench_heldout.py`` does) and prints, per dataset (medians over its neurons, each
neuron's trials pooled): the true and predicted spike rates (Hz), their log10
ratio (0 = calibrated; it is what one correction factor per recording would have
to undo) and the CASCADE bias, next to statistics of the fluorescence alone that a
calibration could use: the deep model's own rate, the dF/F 99th minus 10th
percentile, the noise SD (robust, per frame), the skewness, the decay time of an
OASIS AR(1) fit, the OASIS-deconvolved calcium per predicted spike and the
median size of the deconvolved events (OASIS activity merged over 100 ms, events
above 3 noise SDs: if the smallest events were single spikes, counts would
follow from calcium over event size, as in MLspike's autocalibration).

It then asks whether those statistics predict the log ratio on a dataset they
were not fitted on: a ridge regression (standardised features, the penalty chosen
by an inner leave-one-out) fitted on the other datasets' medians predicts each
held-out dataset's log ratio; the rates multiplied by ten to that power give
the corrected bias. Printed: Spearman correlations of each statistic with the log
ratio, and the median |bias| over datasets before and after the correction, next
to a constant correction (the other datasets' median log ratio).

It also predicts each dataset of dF/F traces a second time read in arbitrary
units (``units="arbitrary"``) and prints the ratio of the two spike counts: how
far a ``count_scale`` calibrated in one would be off in the other.

Last, what :meth:`DeepSpikeInference.calibrate_counts` does with ground truth:
``k`` random neurons of each dataset set its ``count_scale`` (their true spikes
over their predicted ones) and the dataset's bias is the median over its other
neurons (the bias of scaled rates is ``scale * (1 + bias) - 1``, exactly, as the
smoothing is linear). Printed: the median |bias| over datasets, median and
quartiles over 200 draws (seed 0), for ``k`` = 1, 2, 3 and 5.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import FOLDS  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402

FEATURES = [
    "deep_rate",
    "amplitude",
    "noise_sd",
    "skewness",
    "decay_s",
    "fs",
    "dff_per_spike",
    "event_size",
]


def event_sizes(s, fs, sd, merge_s=0.1, threshold=3.0):
    """Deconvolved activity ``s`` summed over runs of frames less than ``merge_s``
    apart, keeping the sums above ``threshold`` noise SDs ``sd``."""
    frames = np.flatnonzero(s > 0)
    if len(frames) == 0:
        return np.empty(0)
    runs = np.split(frames, np.flatnonzero(np.diff(frames) > max(1, round(merge_s * fs))) + 1)
    sizes = np.array([s[r].sum() for r in runs])
    return sizes[sizes > threshold * sd]


def neuron_rows(name, test, rates):
    """One dict per neuron: true and predicted rates, bias and fluorescence statistics."""
    import pandas as pd
    from oasis.functions import deconvolve

    from calgan_sklearn.metrics import cascade_bias
    from calgan_sklearn.signal import noise_sd

    fs = float(test.fs)
    neuron = np.asarray(test.neuron).astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # neurons without spikes: NaN bias
        bias = cascade_bias(
            test.spikes, rates, fs, average=False, smooth_prediction=True, groups=neuron
        )
    rows = []
    for j, label in enumerate(pd.unique(neuron)):
        seconds = n_true = n_pred = deconvolved = 0.0
        stats = {"amplitude": [], "noise_sd": [], "skewness": [], "decay_s": []}
        events = []
        for i in np.flatnonzero(neuron == label):
            ok = np.isfinite(test.calcium[i])
            x = test.calcium[i][ok].astype(np.float64)
            if len(x) < 20:
                continue
            seconds += len(x) / fs
            n_true += np.nansum(test.spikes[i][ok])
            n_pred += np.nansum(rates[i][ok])
            _, s, _, g, _ = deconvolve(x, penalty=1)
            g = float(np.atleast_1d(g)[0])
            deconvolved += float(np.sum(s))
            events.append(event_sizes(s, fs, noise_sd(x)))
            stats["amplitude"].append(np.percentile(x, 99) - np.percentile(x, 10))
            stats["noise_sd"].append(noise_sd(x))
            z = x - x.mean()
            stats["skewness"].append((z**3).mean() / max(z.var() ** 1.5, 1e-12))
            stats["decay_s"].append(-1.0 / (fs * np.log(g)) if 0 < g < 1 else np.nan)
        if seconds == 0:
            continue
        rows.append(
            dict(
                dataset=name,
                neuron=label,
                fs=fs,
                n_true=n_true,
                n_pred=n_pred,
                true_rate=n_true / seconds,
                deep_rate=n_pred / seconds,
                log_ratio=np.log10(max(n_true, 0.5) / max(n_pred, 1e-3)),
                bias=bias[j],
                dff_per_spike=deconvolved / max(n_pred, 1e-3),
                event_size=float(np.median(np.concatenate(events)))
                if sum(map(len, events)) >= 5
                else np.nan,
                **{k: float(np.nanmedian(v)) for k, v in stats.items()},
            )
        )
    return rows


def leave_one_out(features, target):
    """Each dataset's log ratio predicted by a ridge fitted on the others."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = np.empty(len(target))
    for i in range(len(target)):
        keep = np.arange(len(target)) != i
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 3, 21)))
        out[i] = model.fit(features[keep], target[keep]).predict(features[i : i + 1])[0]
    return out


def main(argv=None):
    import pandas as pd

    from calgan_sklearn import load_model
    from calgan_sklearn.evaluation import _predict_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, help="folder of bench_heldout.py --save-models")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--csv", type=Path, default=None, help="write the per-neuron rows here")
    args = parser.parse_args(argv)

    rows, units_ratio = [], {}
    for k, fold in enumerate(FOLDS, 1):
        model = load_model(args.models / f"fold{k}")
        for name in fold:
            test = load_one(args.data, name, None)
            with _predict_params(model, test):
                rates = model.predict(test.calcium)
                if model.units == "dff":  # the same traces read in arbitrary units
                    model.set_params(units="arbitrary")
                    other = model.predict(test.calcium)
                    units_ratio[name] = np.nansum(other, dtype=np.float64) / np.nansum(
                        rates, dtype=np.float64
                    )
            rows += neuron_rows(name, test, rates)
    df = pd.DataFrame(rows)
    if args.csv:
        df.to_csv(args.csv, index=False)
    per = df.groupby("dataset").median(numeric_only=True).sort_values("log_ratio")
    shown = ["fs", "true_rate", "deep_rate", "log_ratio", "bias"]
    shown += [f for f in FEATURES if f not in shown]
    print(per[shown].round(3).to_string())

    logged = per[FEATURES].copy()
    for col in ["deep_rate", "amplitude", "noise_sd", "decay_s", "fs", "dff_per_spike"]:
        logged[col] = np.log10(logged[col].clip(lower=1e-6))
    # a dataset without 5 events per neuron gets the others' median
    events = np.log10(logged["event_size"].clip(lower=1e-6))
    logged["event_size"] = events.fillna(events.median())
    print("\nSpearman correlation with the log ratio over datasets:")
    print(
        f"  true rate (not available to a calibration): "
        f"{per.log_ratio.corr(per.true_rate, method='spearman'):+.2f}"
    )
    for col in FEATURES:
        print(f"  {col:14s} {per.log_ratio.corr(logged[col], method='spearman'):+.2f}")

    y = per.log_ratio.to_numpy()
    fitted = leave_one_out(logged.to_numpy(), y)
    constant = np.array([np.median(np.delete(y, i)) for i in range(len(y))])

    def med_bias(shift):
        # rates multiplied by 10**shift: predicted / true counts become 10**(shift - y)
        return float(np.median(np.abs(10 ** (shift - y) - 1)))

    print(
        f"\nmedian |bias| over {len(y)} datasets (from the median log ratios): "
        f"as predicted {med_bias(0 * y):.3f}; constant correction {med_bias(constant):.3f}; "
        f"ridge on the statistics {med_bias(fitted):.3f}"
    )

    ratio = pd.Series(units_ratio)
    print(
        f"\nspike count read in arbitrary units / read in dF/F, {len(ratio)} datasets of dF/F "
        f"traces: median {ratio.median():.2f}, range {ratio.min():.2f}-{ratio.max():.2f}; "
        f"off by more than 1.2x on {int((np.abs(np.log(ratio)) > np.log(1.2)).sum())}"
    )
    print("  " + ", ".join(f"{k.split('-')[0]} {v:.2f}" for k, v in ratio.sort_values().items()))

    rng = np.random.default_rng(0)
    scored = df.dropna(subset=["bias"])
    print("\ncount_scale from k neurons with ground truth per dataset (200 draws):")
    for k in (1, 2, 3, 5):
        medians, within, used = [], [], 0
        for _ in range(200):
            biases = []
            for _, neurons in scored.groupby("dataset"):
                if len(neurons) <= k:
                    continue  # no neuron left to score
                pick = rng.permutation(len(neurons))
                cal, rest = neurons.iloc[pick[:k]], neurons.iloc[pick[k:]]
                scale = cal.n_true.sum() / max(cal.n_pred.sum(), 1e-12)
                biases.append(np.median(scale * (1 + rest.bias) - 1))
            biases = np.abs(biases)
            medians.append(np.median(biases))
            within.append(np.mean(biases <= 0.5))
            used = len(biases)
        q1, q2, q3 = np.percentile(medians, [25, 50, 75])
        print(
            f"  k={k}: median |bias| {q2:.3f} (quartiles {q1:.3f}-{q3:.3f}) over {used} "
            f"datasets; {np.mean(within):.0%} of them within 0.5"
        )


if __name__ == "__main__":
    main()
