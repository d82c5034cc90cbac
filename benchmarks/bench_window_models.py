"""Leave-one-dataset-out benchmark of the window-level Keras estimators.

On SpikeFinder datasets 4, 5 and 6 (100 Hz, ../shared/data/spikefinder), cut
32-frame windows (label: a spike in the 4 central frames) and, holding out each
dataset in turn, report

- SpikeClassifier: ROC AUC and balanced accuracy on the held-out dataset;
- CalciumAutoencoder features + LogisticRegression: the same;
- CalciumGAN (conditioned on the windows' spike trains): real-vs-generated
  two-sample AUC on the held-out dataset's spike trains (a logistic regression
  on shape features, 5-fold CV; 0.5 = indistinguishable), next to the same
  test against Gaussian noise of matched per-window mean and variance;
- scarce labels: a SpikeClassifier trained on N labelled windows from scratch
  vs started from the GAN's critic (``init=gan``; the GAN saw the training
  windows without labels), mean over 3 draws of the labelled subset.

Usage::

    python benchmarks/bench_window_models.py [--data ../shared/data] [--quick]

Windows are subsampled to keep the run under ~10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from calgan_sklearn.datasets import load_spikefinder, make_windows
from calgan_sklearn.models import CalciumAutoencoder, CalciumGAN, SpikeClassifier

WINDOW = 32
ARCH = dict(filters=16, kernel_size=5, depth=2)


def load_windows(data_dir):
    data = load_spikefinder(Path(data_dir) / "spikefinder")
    X, S, groups = make_windows(
        data.calcium, data.spikes, window=WINDOW, stride=8, target="subwindow", groups=data.dataset
    )
    c0 = (WINDOW - 4) // 2
    y = (S[:, c0 : c0 + 4].sum(1) > 0).astype(int)
    return X, S, y, groups


def subsample(idx, n, rng):
    return rng.choice(idx, min(n, len(idx)), replace=False)


def window_features(x):
    z = (x - x.mean(1, keepdims=True)) / np.maximum(x.std(1, keepdims=True), 1e-12)
    lags = [(z[:, :-k] * z[:, k:]).mean(1) for k in (1, 2, 4, 8)]
    return np.c_[np.sort(z, 1), np.column_stack(lags), np.abs(np.diff(z, axis=1)).mean(1)]


def two_sample_auc(real, other):
    F = np.r_[window_features(real), window_features(other)]
    labels = np.r_[np.zeros(len(real)), np.ones(len(other))]
    clf = LogisticRegression(max_iter=3000)
    return cross_val_score(clf, F, labels, cv=5, scoring="roc_auc").mean()


def scores(y, proba):
    return roc_auc_score(y, proba), balanced_accuracy_score(y, proba > 0.5)


def run_fold(X, S, y, train, test, args, rng):
    out = {}
    t0 = time.time()
    clf = SpikeClassifier(**ARCH, epochs=args.epochs, class_weight="balanced", random_state=0)
    clf.fit(X[train], y[train])
    out["classifier"] = scores(y[test], clf.predict_proba(X[test])[:, 1])

    pipe = make_pipeline(
        CalciumAutoencoder(latent_dim=8, **ARCH, epochs=args.epochs, random_state=0),
        LogisticRegression(max_iter=2000, class_weight="balanced"),
    )
    pipe.fit(X[train], y[train])
    out["autoencoder+logreg"] = scores(y[test], pipe.predict_proba(X[test])[:, 1])

    gan = CalciumGAN(
        **ARCH,
        latent_dim=16,
        n_critic=1,
        epochs=args.gan_epochs,
        batch_size=64,
        learning_rate=1e-3,
        random_state=0,
    )
    gan.fit(X[train], S[train])
    held = subsample(test, 1000, rng)
    fake = gan.sample(y=S[held], random_state=0)[0]
    noise = X[held].mean(1, keepdims=True) + X[held].std(1, keepdims=True) * rng.standard_normal(
        X[held].shape
    )
    out["gan_auc"] = two_sample_auc(X[held], fake)
    out["noise_auc"] = two_sample_auc(X[held], noise)

    pos, neg = train[y[train] == 1], train[y[train] == 0]
    for n in args.n_labels:
        res = {"scratch": [], "gan-init": []}
        for rep in range(3):
            lab = np.r_[subsample(pos, n // 2, rng), subsample(neg, n - n // 2, rng)]
            for name, init in (("scratch", None), ("gan-init", gan)):
                small = SpikeClassifier(
                    **ARCH,
                    epochs=30,
                    batch_size=32,
                    init=init,
                    class_weight="balanced",
                    random_state=rep,
                )
                small.fit(X[lab], y[lab])
                res[name].append(roc_auc_score(y[test], small.predict_proba(X[test])[:, 1]))
        out[f"scarce{n}"] = {k: float(np.mean(v)) for k, v in res.items()}
    out["seconds"] = time.time() - t0
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--gan-epochs", type=int, default=15)
    parser.add_argument("--n-labels", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    X, S, y, groups = load_windows(args.data)
    rng = np.random.default_rng(0)
    print(f"{len(X)} windows of {WINDOW} frames, {y.mean():.1%} with a spike in the centre")
    results = {}
    for g in np.unique(groups):
        train = subsample(np.flatnonzero(groups != g), args.n_train, rng)
        test = subsample(np.flatnonzero(groups == g), args.n_test, rng)
        logging.info("held-out dataset %s: %d train / %d test windows", g, len(train), len(test))
        results[g] = run_fold(X, S, y, train, test, args, rng)
    report(results, args)


def report(results, args):
    names = list(results)
    row = "{:<34}" + "{:>12}" * (len(names) + 1)
    print()
    print(row.format("held-out SpikeFinder dataset", *names, "mean"))
    lines = [
        ("classifier ROC AUC", lambda r: r["classifier"][0]),
        ("classifier balanced acc.", lambda r: r["classifier"][1]),
        ("AE features + logreg ROC AUC", lambda r: r["autoencoder+logreg"][0]),
        ("AE features + logreg bal. acc.", lambda r: r["autoencoder+logreg"][1]),
        ("GAN real-vs-generated AUC", lambda r: r["gan_auc"]),
        ("  (real-vs-matched-noise AUC)", lambda r: r["noise_auc"]),
    ]
    for n in args.n_labels:
        lines.append((f"{n} labels: scratch ROC AUC", lambda r, n=n: r[f"scarce{n}"]["scratch"]))
        lines.append((f"{n} labels: GAN-init ROC AUC", lambda r, n=n: r[f"scarce{n}"]["gan-init"]))
    lines.append(("fold time (s)", lambda r: r["seconds"]))
    for label, get in lines:
        vals = [get(results[g]) for g in names]
        print(
            row.format(
                label,
                *[f"{v:.3f}" if v < 100 else f"{v:.0f}" for v in vals + [float(np.mean(vals))]],
            )
        )


if __name__ == "__main__":
    main()
