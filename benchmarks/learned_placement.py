"""Spike timing learned from a few neurons with ground truth, scored on the others.

Usage::

    python benchmarks/bench_heldout.py --save-models runs/m      # the 8 fold models
    python benchmarks/learned_placement.py runs/m                # 3 neurons, 5 draws
    python benchmarks/learned_placement.py runs/m --neurons 1 --draws 10
    python benchmarks/learned_placement.py runs/m --divisors 2 3  # across frame rates

Above 20 Hz the network of :class:`~calgan_sklearn.models._inference.DeepSpikeInference`
estimates expected spikes per group of frames, and a fixed rule places them on
the frames where the calcium rises (``refine_timing``).
:meth:`~calgan_sklearn.models._inference.DeepSpikeInference.calibrate_timing`
learns that placement from neurons with ground truth instead. For each held-out
dataset above 20 Hz and each draw of ``--neurons`` of its neurons, this script
calibrates the dataset's fold model (which never saw the dataset) on them,
predicts the dataset's other neurons and scores them with the SpikeFinder
correlation, next to the rule's rates and OASIS AR(1)'s on the same neurons.

With ``--divisors d ...`` it also asks whether a calibration holds at another
frame rate: each dataset is loaded again at ``fs / d`` (where that is above
20 Hz), and the other neurons are scored there with the rule, with the
calibration made at the native rate, and with one made at ``fs / d`` on the
same neurons; and at the native rate with the one made at ``fs / d``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import FOLDS  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402


def oasis_rates(test):
    """OASIS AR(1) rates of ``test`` (unscaled: correlations do not depend on its scale)."""
    from calgan_sklearn.baselines import OASIS

    return OASIS(p=1, penalty=1, fs=float(test.fs)).fit(test.calcium).predict(test.calcium)


def held_out_datasets(args):
    """``(fold model, name, data at its native rate, fs, neurons)`` of each held-out
    dataset above 20 Hz with more than ``args.neurons`` neurons; each fold's model
    is loaded once, when its first such dataset comes."""
    from calgan_sklearn import load_model
    from calgan_sklearn.models._inference import network_rate

    for k, fold in enumerate(FOLDS, 1):
        model = None
        for name in fold:
            test = load_one(args.data, name, None)
            fs = float(test.fs)
            neurons = np.unique(test.neuron)
            if network_rate(fs)[0] == 1 or len(neurons) <= args.neurons:
                continue
            model = model or load_model(args.models / f"fold{k}")
            yield model, name, test, fs, neurons


def main(argv=None):
    from calgan_sklearn.evaluation import _predict_params, score_rates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, help="folder of bench_heldout.py --save-models")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--neurons", type=int, default=3, help="neurons calibrated on")
    parser.add_argument("--draws", type=int, default=5, help="draws of those neurons")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--divisors", type=int, nargs="*", default=[], help="also score at fs / d")
    args = parser.parse_args(argv)
    if args.divisors:
        return across_rates(args)

    t0 = time.perf_counter()
    rows = []
    print(
        f"{'held-out dataset':38s} {'Hz':>5s} {'n':>4s} {'draws':>5s} "
        f"{'rule r':>6s} {'learned r':>9s} {'OASIS r':>7s}   (the other neurons)",
        flush=True,
    )
    for model, name, test, fs, neurons in held_out_datasets(args):
        oasis = oasis_rates(test)
        rng = np.random.default_rng(args.seed)
        scores = []
        with _predict_params(model, test):
            rule = model.predict(test.calcium)
            for _ in range(args.draws):
                chosen = np.isin(test.neuron, rng.choice(neurons, args.neurons, False))
                rest = ~chosen
                model.calibrate_timing(test.calcium[chosen], test.spikes[chosen])
                learned = model.predict(test.calcium[rest])
                del model.timing_coef_
                kw = {"neuron": test.neuron[rest]}
                scores.append(
                    [
                        score_rates(test.spikes[rest], r, fs, **kw)["correlation"]
                        for r in (rule[rest], learned, oasis[rest])
                    ]
                )
        r = np.mean(scores, axis=0)
        rows.append((name, r))
        print(
            f"{name:38s} {fs:5.0f} {len(neurons):4d} {len(scores):5d} "
            f"{r[0]:6.3f} {r[1]:9.3f} {r[2]:7.3f}",
            flush=True,
        )
    r = np.array([row[1] for row in rows])
    print(
        f"\nmean over {len(rows)} datasets: rule {r[:, 0].mean():.4f}, learned "
        f"{r[:, 1].mean():.4f} ({r[:, 1].mean() - r[:, 0].mean():+.4f}; better on "
        f"{int((r[:, 1] > r[:, 0] + 1e-4).sum())}), OASIS {r[:, 2].mean():.4f}; learned "
        f"beats OASIS on {int((r[:, 1] > r[:, 2]).sum())}, the rule on "
        f"{int((r[:, 0] > r[:, 2]).sum())}; {time.perf_counter() - t0:.0f} s"
    )


def across_rates(args):
    """Calibrations made at one frame rate and used at another (``--divisors``)."""
    from calgan_sklearn.evaluation import _predict_params, score_rates
    from calgan_sklearn.models._inference import network_rate

    calibration = ("timing_coef_", "timing_fs_")

    def calibrated(model, data, chosen):
        """The calibration's attributes, taken off the model."""
        with _predict_params(model, data):
            model.calibrate_timing(data.calcium[chosen], data.spikes[chosen])
        return {name: model.__dict__.pop(name) for name in calibration}

    def correlation(model, data, rest, state=None):
        with _predict_params(model, data), warnings.catch_warnings():
            # using a calibration at another rate is the point here
            warnings.filterwarnings("ignore", "timing_coef_ was calibrated", UserWarning)
            vars(model).update(state or {})
            try:
                rates = model.predict(data.calcium[rest])
            finally:
                for name in calibration:
                    model.__dict__.pop(name, None)
        return score_rates(data.spikes[rest], rates, float(data.fs), neuron=data.neuron[rest])[
            "correlation"
        ]

    t0 = time.perf_counter()
    columns = ["rule", "native calibration", "own calibration", "back at native"]
    results = {d: [] for d in args.divisors}
    print(f"{'held-out dataset':38s} {'Hz':>5s}  " + " / ".join(columns), flush=True)
    for model, name, test, fs, neurons in held_out_datasets(args):
        for d in args.divisors:
            if network_rate(fs / d)[0] == 1:
                continue
            slow = load_one(args.data, name, fs / d)
            rng = np.random.default_rng(args.seed)
            scores = []
            for _ in range(args.draws):
                drawn = rng.choice(neurons, args.neurons, False)
                chosen, slow_chosen = np.isin(test.neuron, drawn), np.isin(slow.neuron, drawn)
                native_coef = calibrated(model, test, chosen)
                slow_coef = calibrated(model, slow, slow_chosen)
                scores.append(
                    [
                        correlation(model, slow, ~slow_chosen),
                        correlation(model, slow, ~slow_chosen, native_coef),
                        correlation(model, slow, ~slow_chosen, slow_coef),
                        correlation(model, test, ~chosen, slow_coef),
                        correlation(model, test, ~chosen, native_coef),
                    ]
                )
            r = np.mean(scores, axis=0)
            results[d].append(r)
            print(
                f"{name:38s} {fs / d:5.0f}  "
                + " / ".join(f"{x:.3f}" for x in r[:4])
                + f"   (native: calibrated there {r[4]:.3f})",
                flush=True,
            )
    for d, rows in results.items():
        r = np.array(rows)
        print(
            f"\nfs / {d} ({len(r)} datasets): rule {r[:, 0].mean():.4f}, native calibration "
            f"{r[:, 1].mean():.4f} (better than the rule on {int((r[:, 1] > r[:, 0]).sum())}), "
            f"own calibration {r[:, 2].mean():.4f}; at the native rate, calibration at fs / {d} "
            f"{r[:, 3].mean():.4f} against {r[:, 4].mean():.4f} calibrated there"
        )
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
