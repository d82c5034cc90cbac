"""Realism of synthetic calcium traces on held-out CASCADE neurons.

For each dataset (default: five indicators), the neurons are split
(:func:`calgan_sklearn.evaluation.split_neurons`); every generator renders the
held-out neurons' real spike trains, and
:func:`calgan_sklearn.evaluation.realism_report` compares the renderings with
those neurons' real fluorescence: two-sample AUC of a fresh cross-validated
classifier on paired 5 s crops (0.5 = indistinguishable), spike-triggered
average error and power-spectrum distance (dB). TSTR (``--tstr``): an
estimator trained on the generator's rendering of the *training* neurons'
spike trains, scored on the held-out real neurons (SpikeFinder correlation),
against the same estimator trained on the real training neurons. The default
is ``DeepSpikeInference`` (default settings: minutes per dataset and
generator on a CPU); ``oasis`` is quick but learns only a scale from its
training traces, so its ratio is about 1 by construction (a smoke test).

References, always in the table: ``simulator`` (the package's simulator with
the dataset's indicator kinetics, amplitude and noise matched per trace) and
``matched noise`` (white noise of each trace's noise SD on its baseline).

A generator under test is plugged in with ``--generator module:function``:
``function(train)`` receives the training neurons' Bunch (``calcium``,
``spikes``, ``fs``, labels), may fit on it, and returns a callable
``generator(spikes) -> calcium`` (same shape, data units). A function with a
``like`` parameter also gets ``like=(held-out calcium,)``, to read the style
(baseline, noise SD) of the traces it renders, as ``--generator gan`` does.
``benchmarks/realism_references.py`` holds non-adversarial references in this
form (``realism_references:transplant``). A whole-trace
``CalciumGAN`` would be wrapped this way, e.g.::

    def make(train):
        gan = CalciumGAN(fs=train.fs).fit(train.calcium, train.spikes)
        return lambda spikes: gan.sample(y=spikes)[0]

``--generator gan-styles`` trains one ``CalciumGAN(fs=...)`` on the training
neurons of all the datasets together, told each trace's dataset
(``fit(..., style=dataset)``), and renders each dataset's held-out spike trains
with ``sample(..., like=..., style=dataset)``; its ``train_s`` is that one
training time.

``--generator gan`` runs the package's own whole-trace ``CalciumGAN(fs=...)``
(:func:`trace_gan`): trained on the training neurons for ``--gan-epochs``
epochs, it renders the held-out spike trains in the style of the held-out
traces (``like=``: their baseline and noise SD, no spikes; the simulator
reference is matched to the same traces, and to their amplitudes too). The
table then has a column ``train_s``, the generator's training time.
``--in-sample`` trains it on the held-out neurons themselves instead (not a
method: a reference that tells a generator that cannot fit the data it was
trained on from one that does not carry over to new neurons).

Usage::

    python benchmarks/bench_realism.py [--data ../shared/data] [--max-neurons 6]
        [--datasets DS09 DS14 ...] [--generator {gan,gan-styles,module:function}]
        [--gan-epochs 30] [--gan-param mixed_precision=True] [--in-sample]
        [--tstr {deep,oasis,none}]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from calgan_sklearn import CalciumGAN, DeepSpikeInference
from calgan_sklearn.baselines import OASIS
from calgan_sklearn.datasets import INDICATORS, estimate_decay_time, load_cascade
from calgan_sklearn.evaluation import (
    realism_report,
    reference_generators,
    split_neurons,
    tstr_score,
)
from calgan_sklearn.models._base import gpu_available
from calgan_sklearn.signal import pad_traces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import _parse_params  # noqa: E402

DATASETS = ["DS09", "DS14", "DS18", "DS02", "DS31"]  # GCaMP6f, GCaMP6s, R-CaMP, OGB-1, jGCaMP8m
REPO = Path(__file__).resolve().parents[1]


def find_dataset(root, prefix):
    matches = sorted(p for p in Path(root).glob(f"{prefix}-*") if p.is_dir())
    if not matches:
        raise SystemExit(f"no dataset folder {prefix}-* under {root}")
    return matches[0]


def neuron_rows(data, neurons):
    """The traces of ``neurons`` (every per-trace field; the others as they are)."""
    idx = np.flatnonzero(np.isin(data.neuron, neurons))
    per_trace = {k for k, v in data.items() if np.ndim(v) and len(v) == len(data.neuron)}
    return Bunch(**{k: (v[idx] if k in per_trace else v) for k, v in data.items()})


def keep_neurons(data, n, rng):
    neurons = np.unique(data.neuron)
    return neuron_rows(data, rng.choice(neurons, min(n, len(neurons)), replace=False))


def _like(candidates, spikes):
    """The calcium array of ``candidates`` with one trace per spike train, else None."""
    return next((c for c in candidates if len(c) == len(spikes)), None)


def indicator_kinetics(train):
    """The simulator's kinetics for a dataset: its indicator, else a fitted decay."""
    name = str(train.indicator[0]).removeprefix("j")
    if name in INDICATORS:
        return name, name
    taus = estimate_decay_time(train.calcium, train.spikes, train.fs)
    decay = float(np.nanmedian(taus)) if np.isfinite(taus).any() else 1.0
    return dict(INDICATORS["GCaMP6f"], decay=decay), f"GCaMP6f, decay {decay:.2f} s (fitted)"


def trace_gan(train, epochs=30, random_state=0, like=(), **params):
    """A whole-trace ``CalciumGAN`` fitted on ``train``, as a generator.

    ``like`` lists calcium arrays (e.g. the held-out neurons' traces): spikes
    with as many traces as one of them are rendered in its style
    (``sample(like=...)``), others in that of random training traces.
    ``params`` go to ``CalciumGAN`` (e.g. ``mixed_precision=True``).
    """
    gan = CalciumGAN(fs=train.fs, epochs=epochs, random_state=random_state, **params)
    gan.fit(train.calcium, train.spikes)
    styles = [train.calcium, *like]

    def render(spikes):
        return gan.sample(y=spikes, like=_like(styles, spikes), random_state=random_state)[0]

    return render


def styled_trace_gan(splits, epochs=30, random_state=0, **params):
    """One whole-trace ``CalciumGAN`` for all datasets, told each trace's dataset.

    ``splits`` maps dataset names to ``(train, test)`` Bunches (same ``fs``);
    the GAN is fitted once on every training neuron with ``style=`` the
    dataset name. Returns the GAN and a function ``name -> generator`` that
    renders in that dataset's style, scaled like its test (or training)
    traces as :func:`trace_gan` does.
    """
    trains = [train for train, _ in splits.values()]
    fs = trains[0].fs
    calcium = pad_traces([row for t in trains for row in t.calcium])
    spikes = pad_traces([row for t in trains for row in t.spikes])
    style = np.concatenate([[name] * len(t.calcium) for name, t in zip(splits, trains)])
    gan = CalciumGAN(fs=fs, epochs=epochs, random_state=random_state, **params)
    gan.fit(calcium, spikes, style=style)

    def generator_for(name):
        train, test = splits[name]
        styles = [train.calcium, test.calcium]

        def render(spike_trains):
            like = _like(styles, spike_trains)
            return gan.sample(y=spike_trains, like=like, style=name, random_state=random_state)[0]

        return render

    return gan, generator_for


def load_generator(spec, epochs=30, **params):
    if not spec:
        return None
    if spec == "gan":
        return functools.partial(trace_gan, epochs=epochs, **params)
    module, _, function = spec.partition(":")
    return getattr(importlib.import_module(module), function)


def add_tstr(report, generators, train, test, indicator, args):
    """TSTR columns: each generator renders the training neurons' spike trains."""
    estimator = OASIS() if args.tstr == "oasis" else DeepSpikeInference(random_state=0)
    train_generators = dict(generators)
    train_generators.update(reference_generators(train.calcium, train.fs, indicator))
    scores = {}
    for name, generator in train_generators.items():
        rendered = generator(train.spikes)
        rendered[np.isnan(train.calcium)] = np.nan
        scores[name] = tstr_score(
            estimator, (rendered, train.spikes), test, train.fs, real_train=train
        )
    for key, column in (("tstr", "tstr"), ("trtr", "trtr"), ("ratio", "tstr_ratio")):
        report[column] = [scores[g][key] for g in report.generator]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--fs", type=float, default=30.0)
    parser.add_argument("--max-neurons", type=int, default=None, help="per dataset")
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument(
        "--generator",
        default=None,
        help="gan, gan-styles or module:function, see the docstring",
    )
    parser.add_argument("--gan-epochs", type=int, default=30, help="with --generator gan")
    parser.add_argument(
        "--gan-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a CalciumGAN parameter for --generator gan or gan-styles, e.g. "
        "mixed_precision=True; repeatable",
    )
    parser.add_argument(
        "--in-sample",
        action="store_true",
        help="with --generator gan: train on the held-out neurons themselves (a reference)",
    )
    parser.add_argument("--tstr", choices=["deep", "oasis", "none"], default="deep")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)

    gan_params = _parse_params(args.gan_param)
    if args.in_sample and args.generator != "gan":
        parser.error("--in-sample needs --generator gan")
    print(f"Keras backend {keras.backend.backend()}, GPU: {gpu_available()}", flush=True)
    styled = args.generator == "gan-styles"
    make_generator = (
        None if styled else load_generator(args.generator, args.gan_epochs, **gan_params)
    )
    rng = np.random.default_rng(args.random_state)
    splits = {}
    for prefix in args.datasets:
        folder = find_dataset(Path(args.data) / "cascade", prefix)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load_cascade(folder, fs=args.fs)
        if args.max_neurons:
            data = keep_neurons(data, args.max_neurons, rng)
        splits[folder.name] = split_neurons(data, args.test_size, random_state=args.random_state)
    if styled:
        start = time.perf_counter()
        _, generator_for = styled_trace_gan(
            splits, args.gan_epochs, args.random_state, **gan_params
        )
        styled_s = time.perf_counter() - start
        print(f"one GAN for {len(splits)} datasets trained in {styled_s:.0f} s", flush=True)
    tables = []
    for name, (train, test) in splits.items():
        indicator, described = indicator_kinetics(train)
        generators, train_s = {}, np.nan
        if styled:
            generators["gan-styles"] = generator_for(name)
            train_s = styled_s
        elif make_generator is not None:
            start = time.perf_counter()
            if args.generator == "gan":
                source = test if args.in_sample else train
                generators["gan"] = make_generator(source, like=(test.calcium,))
            elif "like" in inspect.signature(make_generator).parameters:
                generators[args.generator] = make_generator(train, like=(test.calcium,))
            else:
                generators[args.generator] = make_generator(train)
            train_s = time.perf_counter() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = realism_report(
                test.calcium,
                test.spikes,
                test.fs,
                generators,
                indicator=indicator,
                # one held-out neuron: its trials are the folds' groups
                groups=test.neuron if len(np.unique(test.neuron)) > 1 else None,
                random_state=args.random_state,
            )
            if args.tstr != "none":
                add_tstr(report, generators, train, test, indicator, args)
        report.insert(0, "dataset", name)
        report.insert(1, "indicator", described)
        report["n_train_neurons"] = len(np.unique(train.neuron))
        report["n_test_neurons"] = len(np.unique(test.neuron))
        if generators:
            report["train_s"] = np.where(report.reference, np.nan, train_s)
        tables.append(report)
        print(report.to_string(index=False, float_format="%.3f"), flush=True)

    table = pd.concat(tables, ignore_index=True)
    print("\nMean over datasets:")
    summary = table.groupby("generator", sort=False)[
        [c for c in ("auc", "sta_error", "spectrum_distance", "tstr_ratio") if c in table]
    ].mean()
    print(summary.to_string(float_format="%.3f"))


if __name__ == "__main__":
    main()
