"""Unsupervised window features: CalciumAutoencoder + LogisticRegression in a pipeline.

The autoencoder learns an 8-dimensional code of 32-frame windows (plus each
window's baseline and noise level); a logistic regression on that code decides
whether a spike falls in the window's centre. Evaluated leave-one-dataset-out
on SpikeFinder 4, 5, 6 (../shared/data when present, simulated data otherwise).

Run: ``python examples/autoencoder_pipeline.py`` (about a minute on CPU).
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline

from calgan_sklearn.datasets import load_spikefinder, make_calcium, make_windows
from calgan_sklearn.models import CalciumAutoencoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spikefinder"

if DATA.is_dir():
    data = load_spikefinder(DATA)
else:
    data = make_calcium(
        n_neurons=6, duration=120.0, indicator=["OGB-1", "GCaMP6s", "GCaMP5k"], random_state=0
    )
X, y, groups = make_windows(
    data.calcium,
    data.spikes,
    window=32,
    stride=16,
    target="center",
    center_width=4,
    groups=data.dataset,
)
keep = np.random.default_rng(0).choice(len(X), size=min(4000, len(X)), replace=False)
X, y, groups = X[keep], y[keep], groups[keep]

pipe = make_pipeline(
    CalciumAutoencoder(latent_dim=8, filters=8, depth=2, epochs=8, random_state=0),
    LogisticRegression(max_iter=2000, class_weight="balanced"),
)
scores = cross_val_score(pipe, X, y, groups=groups, cv=LeaveOneGroupOut(), scoring="roc_auc")
for g, s in zip(sorted(set(groups)), scores):
    print(f"held-out dataset {g}: ROC AUC {s:.3f}")
print(f"mean ROC AUC {scores.mean():.3f}")

pipe.fit(X, y)
ae = pipe[0]
print("features:", ", ".join(ae.get_feature_names_out()))
print(f"reconstruction MSE {-ae.score(X):.4g} (window variance {X.var(axis=1).mean():.4g})")
