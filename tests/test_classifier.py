"""SpikeClassifier: learning, labels, probabilities, pipelines."""

import numpy as np
import pytest
from _presets import TINY_CLASSIFIER as TINY
from _presets import simulated_windows
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from calgan_sklearn.models import SpikeClassifier


@pytest.fixture(scope="module")
def windows():
    return simulated_windows(n=400, noise_level=0.5)


def test_learns_spike_windows_better_than_chance(windows):
    X, y, _ = windows
    clf = SpikeClassifier(filters=8, kernel_size=5, depth=2, epochs=8, random_state=0)
    clf.fit(X[:300], y[:300])
    auc = roc_auc_score(y[300:], clf.predict_proba(X[300:])[:, 1])
    assert auc > 0.75, auc
    assert clf.history_["loss"][-1] < clf.history_["loss"][0]


def test_binary_outputs_are_consistent(windows):
    X, y, _ = windows
    clf = SpikeClassifier(**TINY, random_state=0).fit(X, y)
    proba, dec, pred = clf.predict_proba(X), clf.decision_function(X), clf.predict(X)
    assert proba.shape == (len(X), 2) and dec.shape == (len(X),)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(pred, clf.classes_[(dec > 0).astype(int)])
    np.testing.assert_allclose(np.log(proba[:, 1] / proba[:, 0]), dec, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.n_features_in_ == X.shape[1]


def test_multiclass_string_labels(windows):
    X, y, _ = simulated_windows(n=300, target="count", center_width=8)
    labels = np.array(["none", "one", "several"])[np.minimum(y, 2)]
    clf = SpikeClassifier(**TINY, class_weight="balanced", random_state=0).fit(X, labels)
    assert clf.classes_.tolist() == ["none", "one", "several"]
    assert clf.predict_proba(X).shape == (300, 3)
    assert clf.decision_function(X).shape == (300, 3)
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_partial_fit_with_classes_argument(windows):
    X, y, _ = windows
    clf = SpikeClassifier(**TINY, random_state=0)
    clf.partial_fit(X[y == 0][:20], y[y == 0][:20], classes=[0, 1])
    clf.partial_fit(X[:40], y[:40])
    assert clf.classes_.tolist() == [0, 1] and clf.n_iter_ == 2
    # the classes= of a call travel as an argument, never as an attribute
    assert [k for k in vars(clf) if k.startswith("_")] == ["_seed"]
    with pytest.raises(ValueError, match=r"labels \[5\] that are not among the classes"):
        clf.partial_fit(X[:3], np.array([0, 1, 5]))


@pytest.mark.slow
def test_normalize_options_and_pipeline(windows):
    X, y, _ = windows
    for normalize in ("noise", "global", None):
        clf = SpikeClassifier(**TINY, normalize=normalize, random_state=0).fit(X, y)
        assert clf.predict_proba(X[:5]).shape == (5, 2)
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 10.0), SpikeClassifier(**TINY))
    assert pipe.fit(X, y).predict(X[:5]).shape == (5,)


def test_window_normalisation_is_invariant_to_units(windows):
    X, y, _ = windows
    clf = SpikeClassifier(**TINY, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), clf.predict_proba(3.0 * X + 7.0), atol=1e-4)
