"""Rendered training pairs for a new preparation with few labelled neurons.

The situation: a user's recordings come from a preparation no model has seen,
and they have ground truth for a few neurons of it. Is it worth rendering more
(calcium, spike train) pairs in that preparation's style and fine-tuning the
pretrained network on them, rather than on the real neurons alone?

For each dataset (default: the small ones of ../shared/data), the starting
network is the fold model of the held-out run that never saw the dataset
(``benchmarks/bench_heldout.py --save-models DIR``, folds as in its
``FOLDS``). The dataset's neurons are split in two halves; each half in turn is
the labelled part and the other half is scored (SpikeFinder correlation at the
native frame rate, mean over the scored traces, then over the two halves).
Four models per half:

- ``base``: the fold model as it is;
- ``real``: fine-tuned on the labelled neurons;
- ``real+gan``: fine-tuned on the labelled neurons and ``--copies`` renderings
  of their spike trains by a whole-trace ``CalciumGAN(fs=...)`` fitted on those
  neurons (each copy a new draw of noise and per-trace code, in the style of
  the labelled traces, ``like=``);
- ``real+sim``: the same with the package's simulator instead of the GAN
  (indicator kinetics, amplitude fitted per trace, noise matched; a new noise
  draw per copy);
- ``real+transplant``: the same with ``realism_references.transplant`` (each
  rendering from one labelled neuron's own kernel and a stretch of its own
  residual, at a new offset per copy).

``--variants`` picks which variants run (default ``gan``, ``sim`` and
``transplant``). Two more can be asked for: ``gan_shuffled`` and
``sim_shuffled`` are ``gan`` and ``sim`` rendering new spike trains instead of
the labelled ones. Each copy takes each labelled neuron's train with its events
(spikes less than 0.1 s apart) and the silences between them put in a new
random order (:func:`shuffled_trains`), so the network sees new combinations of
overlapping transients at the neuron's own firing statistics.

Fine-tuning continues the fold model's network (``warm_start=True``, one
network, no distillation, learning rate 1e-3, fixed seed) for the same number
of gradient steps in every variant: ``--epochs`` passes over the augmented
data, ``--epochs * (1 + copies)`` over the real neurons alone.

Usage::

    python benchmarks/bench_heldout.py --save-models runs/folds   # once, ~50 min
    python benchmarks/bench_augment.py --models runs/folds [--datasets DS27 DS18 ...]
        [--copies 3] [--epochs 2] [--gan-epochs 50] [--variants gan sim transplant]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import FOLDS  # noqa: E402
from bench_realism import indicator_kinetics, neuron_rows  # noqa: E402
from realism_references import transplant  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402

from calgan_sklearn import CalciumGAN, load_model  # noqa: E402
from calgan_sklearn.evaluation import reference_generators  # noqa: E402
from calgan_sklearn.metrics import spikefinder_correlation  # noqa: E402

#: Datasets of ../shared/data with at most 6 neurons, and one with 7.
SMALL = [
    "DS27-GCaMP6f-m-PV-vivo-V1",
    "DS18-R-CaMP-m-CA3",
    "DS22-OGB1-m-SST-V1",
    "spikefinder-4",
    "DS12-GCaMP6s-m-V1-neuropil-corrected",
]


def _score(model, test, fs):
    rates = model.predict(test.calcium)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.nanmean(spikefinder_correlation(test.spikes, rates, fs, average=False)))


def _fine_tune(folder, X, y, fs, units, epochs):
    model = load_model(folder)
    model.set_params(
        fs=fs,
        units=units,
        warm_start=True,
        ensemble_size=1,
        distill_epochs=0,
        epochs=epochs,
        learning_rate=1e-3,
        random_state=0,
    )
    return model.fit(X, y)


VARIANTS = ("gan", "sim", "transplant", "gan_shuffled", "sim_shuffled")


def shuffled_trains(spikes, fs, random_state=0, gap_s=0.1):
    """Each row's spike train with its events and the silences between them reordered.

    An event is a run of spiking frames less than ``gap_s`` apart (its own
    pattern of counts kept); the silences between events, and before the first
    and after the last, are permuted, and so are the events (two events may
    then abut and make a longer burst). Length, NaN padding and spike count of
    every row are kept.
    """
    rng = np.random.default_rng(random_state)
    out = np.full_like(spikes, np.nan, dtype=float)
    gap = max(int(round(gap_s * fs)), 1)
    for i, row in enumerate(spikes):
        valid = np.flatnonzero(np.isfinite(row))
        s = np.asarray(row[valid], dtype=float)
        on = np.flatnonzero(s > 0)
        if len(on) == 0:
            out[i, valid] = s
            continue
        breaks = np.flatnonzero(np.diff(on) >= gap)
        starts = np.r_[on[0], on[breaks + 1]]
        stops = np.r_[on[breaks], on[-1]] + 1
        events = [s[a:b] for a, b in zip(starts, stops)]
        silences = np.r_[starts[0], starts[1:] - stops[:-1], len(s) - stops[-1]]
        events = [events[k] for k in rng.permutation(len(events))]
        silences = silences[rng.permutation(len(silences))]
        new = np.zeros(len(s))
        t = int(silences[0])
        for k, event in enumerate(events):
            new[t : t + len(event)] = event
            t += len(event) + int(silences[k + 1])
        out[i, valid] = new
    return out


def run_dataset(name, models, copies, epochs, gan_epochs, variants=VARIANTS[:3]):
    fold = next(k for k, f in enumerate(FOLDS, 1) if name in f)
    folder = Path(models) / f"fold{fold}"
    data = load_one(DEFAULT_DATA, name, None)
    fs = float(data.fs)
    units = str(data.units[0])  # one kind per dataset: SpikeFinder arbitrary, CASCADE dF/F
    neurons = np.unique(data.neuron)
    np.random.default_rng(0).shuffle(neurons)
    halves = [neurons[::2], neurons[1::2]]
    scores = {k: [] for k in ("base", "real", *(f"real+{v}" for v in variants))}
    gan_s = []
    for h in range(2):
        test, train = neuron_rows(data, halves[h]), neuron_rows(data, halves[1 - h])
        base = load_model(folder).set_params(fs=fs, units=units)
        scores["base"].append(_score(base, test, fs))
        tuned = _fine_tune(folder, train.calcium, train.spikes, fs, units, epochs * (1 + copies))
        scores["real"].append(_score(tuned, test, fs))
        renderings = {}  # label: [(calcium, spikes) per copy]
        own = [train.spikes] * copies
        new = [shuffled_trains(train.spikes, fs, random_state=100 + k) for k in range(copies)]
        if "gan" in variants or "gan_shuffled" in variants:
            start = time.perf_counter()
            gan = CalciumGAN(fs=fs, epochs=gan_epochs, random_state=0)
            gan.fit(train.calcium, train.spikes)
            gan_s.append(time.perf_counter() - start)
            for v, trains in (("gan", own), ("gan_shuffled", new)):
                if v in variants:
                    renderings[f"real+{v}"] = [
                        (gan.sample(y=y, like=train.calcium, random_state=k)[0], y)
                        for k, y in enumerate(trains, 1)
                    ]
        if "sim" in variants or "sim_shuffled" in variants:
            indicator = indicator_kinetics(train)[0] if "indicator" in train else "GCaMP6f"
            for v, trains in (("sim", own), ("sim_shuffled", new)):
                if v in variants:
                    renderings[f"real+{v}"] = [
                        (
                            reference_generators(train.calcium, fs, indicator, random_state=k)[
                                "simulator"
                            ](y.copy()),
                            y,
                        )
                        for k, y in enumerate(trains, 1)
                    ]
        if "transplant" in variants:
            render = [
                transplant(train, like=(train.calcium,), random_state=k)
                for k in range(1, copies + 1)
            ]
            renderings["real+transplant"] = [(r(train.spikes), train.spikes) for r in render]
        for label, copies_of in renderings.items():
            Xs, ys = [train.calcium], [train.spikes]
            for rendered, y in copies_of:
                rendered = np.asarray(rendered, dtype=float)
                rendered[np.isnan(train.calcium)] = np.nan
                Xs.append(rendered)
                ys.append(y)
            tuned = _fine_tune(folder, np.vstack(Xs), np.vstack(ys), fs, units, epochs)
            scores[label].append(_score(tuned, test, fs))
        print(name, f"half {h}:", {k: round(v[-1], 3) for k, v in scores.items()}, flush=True)
    row = {"dataset": name, "fs": fs, "neurons": len(neurons)}
    row.update({k: float(np.mean(v)) for k, v in scores.items()})
    row["gan_fit_s"] = float(np.mean(gan_s)) if gan_s else np.nan
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", required=True, help="bench_heldout --save-models folder")
    parser.add_argument("--datasets", nargs="+", default=SMALL)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--gan-epochs", type=int, default=50)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS[:3]))
    parser.add_argument("--csv", default=None)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rows = [
            run_dataset(
                name, args.models, args.copies, args.epochs, args.gan_epochs, args.variants
            )
            for name in args.datasets
        ]
    table = pd.DataFrame(rows)
    columns = ["base", "real", *(f"real+{v}" for v in args.variants)]
    for col in columns[1:]:
        table[f"{col} - base"] = table[col] - table["base"]
    print(table.to_string(index=False, float_format="%.3f"))
    print("\nmean:", table[columns].mean().round(3).to_dict())
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
