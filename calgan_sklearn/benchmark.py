"""Compare spike-inference estimators on held-out datasets: ``calgan benchmark``.

Data flows as everywhere in the package: folders (or the simulator) give a
Bunch, and :func:`calgan_sklearn.evaluation.cross_evaluate` fits each
estimator on the training datasets, predicts the held-out ones and scores the
rates with :mod:`calgan_sklearn.metrics`. This module adds the default
estimators, the simulated data and the report: one table row per (held-out
dataset, method), optionally written as CSV next to a figure.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.utils import Bunch

from ._validation import check_fs
from .evaluation import _check_estimators, cross_evaluate
from .signal import trace_lengths

__all__ = ["run_benchmark", "default_estimators", "simulated_benchmark_data", "COLUMNS"]

logger = logging.getLogger(__name__)

#: Columns of the table returned by :func:`run_benchmark`.
COLUMNS = [
    "dataset",
    "method",
    "n_traces",
    "correlation",
    "error",
    "bias",
    "fit_time_s",
    "frames_per_s",
]

#: Indicators simulated as separate "datasets" when no data is given.
SIM_INDICATORS = ("OGB-1", "GCaMP6f", "GCaMP6s")


def default_estimators(quick=False, fs=100.0, random_state=0):
    """The estimators compared by default: deep models and every classical baseline.

    Parameters
    ----------
    quick : bool, default=False
        Tiny deep models (a few seconds of training each) for smoke tests;
        otherwise small models that still learn within about a minute on a
        2-core CPU for the simulated benchmark.
    fs : float, default=100.0
        Frame rate passed to every estimator.
    random_state : int, default=0
        Seed of the deep models and of window sampling.

    Returns
    -------
    estimators : dict of str to estimator
        Unfitted estimators following the trace convention, by display name.

    Examples
    --------
    >>> from calgan_sklearn.benchmark import default_estimators
    >>> sorted(default_estimators(quick=True))[:2]
    ['DeepSpikeInference', 'Derivative']
    """
    from .baselines import OASIS, DerivativeDetector, WienerDeconvolution
    from .models import DeepSpikeInference, SlidingWindowInference, SpikeClassifier

    if quick:
        deep = dict(filters=8, depth=3, epochs=1, crop_length=128)
    else:
        deep = dict(filters=16, depth=6, epochs=80, crop_length=256)
    # one network, no bandwidth augmentation: keeps the simulated tour within
    # about a minute (the simulated recordings are at their native rate)
    deep.update(ensemble_size=1, lowpass_min_fs=None)
    clf = dict(filters=4, depth=1, epochs=2) if quick else dict(filters=8, depth=2, epochs=5)
    estimators = {
        "DeepSpikeInference": DeepSpikeInference(fs=fs, random_state=random_state, **deep),
        "SpikeClassifier (sliding)": SlidingWindowInference(
            SpikeClassifier(batch_size=32, learning_rate=3e-3, random_state=random_state, **clf),
            window=32,
            max_windows=2000 if quick else 8000,
            fs=fs,
            random_state=random_state,
        ),
        "OASIS": OASIS(fs=fs),
        "Wiener": WienerDeconvolution(fs=fs),
        "Derivative": DerivativeDetector(fs=fs),
    }
    if not quick:
        estimators["OASIS AR(2)"] = OASIS(p=2, fs=fs)
    return estimators


def simulated_benchmark_data(quick=False, fs=100.0, random_state=0):
    """Simulated recordings with several indicators, each indicator one "dataset".

    Parameters
    ----------
    quick : bool, default=False
        Fewer, shorter traces (for smoke tests).
    fs : float, default=100.0
        Frame rate in Hz.
    random_state : int, default=0
        Seed of the simulation.

    Returns
    -------
    data : Bunch
        As returned by :func:`calgan_sklearn.datasets.make_calcium`, with
        ``dataset`` labels ``"sim-<indicator>"``.
    """
    from .datasets import make_calcium
    from .datasets._auto import concat_bunches

    n_neurons, duration = (3, 20.0) if quick else (6, 120.0)
    bunches = [
        make_calcium(
            n_neurons=n_neurons,
            duration=duration,
            fs=fs,
            indicator=ind,
            noise_level=(1.0, 4.0),
            random_state=random_state + k,
        )
        for k, ind in enumerate(SIM_INDICATORS)
    ]
    return concat_bunches(bunches)


def run_benchmark(
    data=None,
    train=None,
    test=None,
    estimators=None,
    fs=100.0,
    out_dir=None,
    random_state=0,
    progress=True,
    quick=False,
):
    """Fit and score estimators on held-out datasets; one row per (dataset, method).

    Three modes:

    - ``data`` given (folders or a Bunch): leave-one-dataset-out over the
      datasets it contains (:class:`~sklearn.model_selection.LeaveOneGroupOut`
      with ``groups=data.dataset``);
    - ``train`` and ``test`` given: fit on all of ``train``, score every
      dataset in ``test``;
    - neither: leave-one-dataset-out over simulated recordings of several
      indicators (:func:`simulated_benchmark_data`).

    Parameters
    ----------
    data : str, Path, list of them, or Bunch, default=None
        SpikeFinder-layout and/or CASCADE folders (the layout is detected; CASCADE
        is resampled to ``fs``), or a loaded Bunch.
    train, test : str, Path, list of them, or Bunch, default=None
        A fixed split; both or neither.
    estimators : dict of str to estimator, default=None
        Trace-level estimators by display name; each is cloned per fold and gets
        ``fs`` (and ``random_state`` where it has one and it is None).
        ``None`` uses :func:`default_estimators`.
    fs : float, default=100.0
        Frame rate at which folders are loaded and the estimators run.
    out_dir : str or Path, default=None
        Where ``benchmark.csv`` and ``benchmark.png`` are written; nothing is
        written when ``None``.
    random_state : int, default=0
        Seed of the simulation and of the default estimators.
    progress : bool, default=True
        Show a tqdm progress bar over (fold, method) pairs.
    quick : bool, default=False
        Small simulation and tiny deep models (seconds instead of minutes).

    Returns
    -------
    results : pandas.DataFrame
        Columns :data:`COLUMNS`: held-out ``dataset``, ``method``, ``n_traces``,
        mean SpikeFinder ``correlation``, CASCADE ``error`` and ``bias`` (both
        with the prediction smoothed like the truth, so discrete and smooth
        outputs are compared alike), ``fit_time_s`` and inference
        ``frames_per_s``.

    See Also
    --------
    calgan_sklearn.metrics.spikefinder_correlation
    calgan_sklearn.metrics.cascade_error

    Examples
    --------
    >>> from calgan_sklearn.baselines import OASIS
    >>> from calgan_sklearn.benchmark import run_benchmark
    >>> table = run_benchmark(estimators={"OASIS": OASIS()}, quick=True, progress=False)
    >>> table.shape
    (3, 8)
    """
    fs = check_fs(fs)
    bunch, splits = _make_folds(data, train, test, fs, quick, random_state)
    if estimators is None:
        estimators = default_estimators(quick=quick, fs=fs, random_state=random_state)
    _check_estimators(estimators)
    estimators = {name: _seeded(est, random_state) for name, est in estimators.items()}
    result = cross_evaluate(
        estimators,
        bunch.calcium,
        bunch.spikes,
        groups=bunch.dataset,
        fs=fs,
        cv=splits,
        progress=progress,
        return_estimators=out_dir is not None,
    )
    table = result[0][COLUMNS] if out_dir is not None else result[COLUMNS]
    for row in table.itertuples():
        logger.info("%s on %s: correlation %.3f", row.method, row.dataset, row.correlation)
    if out_dir is not None:
        write_report(table, _example(bunch, splits[0][1], result[1]), out_dir)
    return table


# --------------------------------------------------------------------------- #
# Data and folds
# --------------------------------------------------------------------------- #
def _load(source, fs):
    if isinstance(source, dict):  # a Bunch, or a plain dict with the same keys
        return Bunch(**source)
    from .datasets._auto import load_folder

    return load_folder(source, fs=fs)


def _subset(bunch, idx):
    idx = np.asarray(idx)
    out = Bunch(fs=bunch.fs)
    for key in ("calcium", "spikes"):
        arr = bunch[key][idx]
        width = int(trace_lengths(arr).max()) if len(arr) else 0
        out[key] = arr[:, : max(width, 1)]
    for key in ("dataset", "neuron", "indicator"):
        if key in bunch:
            out[key] = np.asarray(bunch[key], dtype=str)[idx]
    return out


def _join(train_b, test_b):
    """One Bunch holding the training traces, then the test traces (NaN-padded)."""
    width = max(train_b.calcium.shape[1], test_b.calcium.shape[1])

    def pad(a):
        return np.pad(
            np.asarray(a, dtype=float), ((0, 0), (0, width - a.shape[1])), constant_values=np.nan
        )

    out = Bunch(fs=train_b.fs)
    for key in ("calcium", "spikes"):
        out[key] = np.vstack([pad(train_b[key]), pad(test_b[key])])
    for key in ("dataset", "neuron", "indicator"):
        if key in train_b and key in test_b:
            out[key] = np.r_[np.asarray(train_b[key], str), np.asarray(test_b[key], str)]
    return out


def _check_labelled(bunch, what):
    if bunch.get("spikes") is None:
        raise ValueError(
            f"{what} has no ground-truth spikes; a benchmark needs recordings with "
            "spikes (e.g. SpikeFinder 'train' files or CASCADE ground truth)."
        )


def _make_folds(data, train, test, fs, quick, random_state):
    """The data as one Bunch and its (train, test) index pairs."""
    if (train is None) != (test is None):
        raise ValueError("give both train and test for a fixed split, or neither.")
    if train is not None:
        if data is not None:
            raise ValueError("give either data (leave-one-dataset-out) or train/test, not both.")
        train_b, test_b = _load(train, fs), _load(test, fs)
        _check_labelled(train_b, "train")
        _check_labelled(test_b, "test")
        _check_rate(train_b, fs, "train")
        _check_rate(test_b, fs, "test")
        n_train, n_test = len(train_b.calcium), len(test_b.calcium)
        split = (np.arange(n_train), np.arange(n_train, n_train + n_test))
        return _join(train_b, test_b), [split]
    if data is None:
        bunch = simulated_benchmark_data(quick, fs, random_state)
    else:
        bunch = _load(data, fs)
    _check_labelled(bunch, "data")
    _check_rate(bunch, fs, "data")
    groups = np.asarray(bunch.dataset, dtype=str)
    if len(np.unique(groups)) < 2:
        raise ValueError(
            f"leave-one-dataset-out needs at least 2 datasets; data holds only "
            f"{np.unique(groups).tolist()}. Pass more folders, or train= and test=."
        )
    return bunch, list(LeaveOneGroupOut().split(bunch.calcium, groups=groups))


def _check_rate(bunch, fs, what):
    if not np.isclose(float(bunch.fs), fs):
        raise ValueError(
            f"{what} is sampled at {float(bunch.fs)} Hz but the benchmark runs at fs={fs} Hz; "
            "load it with the same fs."
        )


def _seeded(est, random_state):
    """``est`` with ``random_state`` set where it has one and it is None (a clone)."""
    params = est.get_params(deep=False)
    if "random_state" in params and params["random_state"] is None:
        return clone(est).set_params(random_state=random_state)
    return est


def _example(bunch, test, estimators):
    """The first fold's first test trace and each method's rates on it, for the figure."""
    test_b = _subset(bunch, test[:1])
    return test_b, {name: fitted[0].predict(test_b.calcium) for name, fitted in estimators.items()}


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def write_report(table, example, out_dir):
    """Write ``benchmark.csv`` and ``benchmark.png`` (correlation bars, example trace).

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`run_benchmark`.
    example : tuple (Bunch, dict of str to ndarray) or None
        Test data of one fold and each method's predicted rates on it; the
        first trace is drawn.
    out_dir : str or Path
        Created if needed.

    Returns
    -------
    paths : dict
        ``{"csv": Path, "png": Path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = out_dir / "benchmark.csv", out_dir / "benchmark.png"
    table.to_csv(csv_path, index=False)
    fig = _make_figure(table, example)
    fig.savefig(png_path, dpi=110)
    logger.info("wrote %s and %s", csv_path, png_path)
    return {"csv": csv_path, "png": png_path}


def _make_figure(table, example):
    from matplotlib.figure import Figure

    methods = list(dict.fromkeys(table["method"]))
    n_rows = 1 + (len(methods) if example is not None else 0)
    fig = Figure(figsize=(10, 3 + 1.1 * (n_rows - 1)), layout="constrained")
    heights = [2.5] + [1.0] * (n_rows - 1)
    axes = fig.subplots(n_rows, 1, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    _bar_chart(axes[0], table, methods)
    if example is not None:
        _example_traces(axes[1:], example, methods)
    return fig


def _bar_chart(ax, table, methods):
    pivot = table.pivot_table(index="dataset", columns="method", values="correlation")
    pivot = pivot.reindex(columns=methods)
    x = np.arange(len(pivot.index))
    width = 0.8 / max(len(methods), 1)
    for k, method in enumerate(methods):
        ax.bar(x + (k - (len(methods) - 1) / 2) * width, pivot[method], width, label=method)
    ax.set_xticks(x, pivot.index)
    ax.set_ylabel("SpikeFinder correlation")
    ax.set_title("Held-out correlation per dataset")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize="small", ncols=min(len(methods), 4))


def _example_traces(axes, example, methods, seconds=20.0):
    test_b, preds = example
    fs = float(test_b.fs)
    n = int(trace_lengths(test_b.calcium[:1])[0])
    start = 0
    spikes = test_b.spikes[0, :n]
    if n > seconds * fs:  # show the busiest stretch
        k = int(seconds * fs)
        busiest = np.convolve(spikes, np.ones(k), mode="valid")
        start = int(np.argmax(busiest))
    stop = min(n, start + int(seconds * fs))
    t = np.arange(start, stop) / fs
    calcium = test_b.calcium[0, start:stop]
    span = np.ptp(calcium) or 1.0
    for ax, method in zip(axes, methods):
        rates = preds[method][0, start:stop]
        ax.plot(t, (calcium - calcium.min()) / span, color="0.6", lw=0.7, label="calcium")
        ax.plot(t, rates / (np.nanmax(rates) or 1.0), color="C1", lw=0.9, label="inferred")
        idx = np.flatnonzero(spikes[start:stop] > 0)
        ax.vlines(t[idx], -0.35, -0.05, color="k", lw=0.8, label="true spikes")
        ax.set_ylabel(method, rotation=0, ha="right", va="center", fontsize="small")
        ax.set_yticks([])
        ax.set_ylim(-0.4, 1.1)
    axes[0].set_title(f"Example held-out trace ({test_b.dataset[0]}, neuron {_neuron(test_b)})")
    axes[0].legend(fontsize="x-small", loc="upper right", ncols=3)
    axes[-1].set_xlabel("time (s)")


def _neuron(bunch):
    return str(bunch["neuron"][0]) if "neuron" in bunch else "0"
