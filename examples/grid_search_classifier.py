"""Grid search over SpikeClassifier with leave-one-dataset-out cross-validation.

Windows of 32 frames are cut from SpikeFinder datasets 4, 5 and 6 (100 Hz) in
../shared/data when present, otherwise from simulated recordings of three
indicators; the label is whether a spike falls in the 4 central frames.
``LeaveOneGroupOut`` with ``groups=`` the windows' dataset labels asks how well
each architecture generalises to a recording it has never seen.

Run: ``python examples/grid_search_classifier.py`` (about a minute on CPU).
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from calgan_sklearn.datasets import load_spikefinder, make_calcium, make_windows
from calgan_sklearn.models import SpikeClassifier

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spikefinder"


def load_data():
    if DATA.is_dir():
        return load_spikefinder(DATA)
    return make_calcium(
        n_neurons=6, duration=120.0, indicator=["OGB-1", "GCaMP6s", "GCaMP5k"], random_state=0
    )


data = load_data()
X, y, groups = make_windows(
    data.calcium,
    data.spikes,
    window=32,
    stride=16,
    target="center",
    center_width=4,
    groups=data.dataset,
)
rng = np.random.default_rng(0)
keep = rng.choice(len(X), size=min(3000, len(X)), replace=False)
X, y, groups = X[keep], y[keep], groups[keep]
print(f"{len(X)} windows, {y.mean():.1%} with a spike, datasets {sorted(set(groups))}")

search = GridSearchCV(
    SpikeClassifier(epochs=4, class_weight="balanced", random_state=0),
    param_grid={"filters": [4, 8], "depth": [1, 2]},
    cv=LeaveOneGroupOut(),
    scoring="roc_auc",
    n_jobs=2,
)
search.fit(X, y, groups=groups)

for params, mean, std in zip(
    search.cv_results_["params"],
    search.cv_results_["mean_test_score"],
    search.cv_results_["std_test_score"],
):
    print(f"{params}: ROC AUC {mean:.3f} +/- {std:.3f} over held-out datasets")
print("best:", search.best_params_)
