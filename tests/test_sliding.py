"""SlidingWindowInference: any window classifier as a trace-level estimator."""

import pickle

import numpy as np
import pytest
from _presets import ar1_traces
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from calgan_sklearn.metrics import spikefinder_correlation
from calgan_sklearn.models import SlidingWindowInference


@pytest.fixture(scope="module")
def data():
    return ar1_traces(0, n_frames=3000, tau=0.3, noise=0.2, rate=0.02, gain=5.0, kernel_taus=6)


def _logreg(**params):
    params = {"window": 16, "max_windows": 4000, "random_state": 0, **params}
    return SlidingWindowInference(LogisticRegression(max_iter=300), **params)


def test_recovers_spikes_on_held_out_traces(data):
    X, y = data
    est = _logreg().fit(X[:3], y[:3])
    rates = est.predict(X[3:])
    assert spikefinder_correlation(y[3:], rates) > 0.7
    # balanced training is corrected back to the true spike frequency and calibrated
    assert est.sample_prior_ == pytest.approx(0.5, abs=0.01)
    assert est.prior_ < 0.05
    assert np.nansum(rates) == pytest.approx(np.nansum(y[3:]), rel=0.25)


def test_uniform_sampling_and_no_calibration(data):
    X, y = data
    est = _logreg(balance=None, calibrate=False).fit(X[:3], y[:3])
    assert est.calibration_scale_ == 1.0
    assert est.sample_prior_ == pytest.approx(est.prior_, abs=0.01)
    assert est.n_windows_ == 4000
    rates = est.predict(X[3:])
    assert rates.min() >= 0 and rates.max() <= 1


def test_trace_convention_edges_and_padding(data):
    X, y = data
    X, y = X.copy(), y.copy()
    X[1, 2000:] = np.nan
    y[1, 2000:] = np.nan
    est = _logreg().fit(X, y)
    rates = est.predict(X)
    assert rates.shape == X.shape
    np.testing.assert_array_equal(np.isnan(rates), np.isnan(X))
    # every frame, including the first and last few, gets a prediction
    assert np.isfinite(rates[0, :8]).all() and np.isfinite(rates[0, -8:]).all()
    # a trace shorter than the window still works, and alone == inside a batch
    np.testing.assert_allclose(est.predict(X[1, :2000])[0], rates[1, :2000], rtol=1e-6)
    assert est.predict(X[0, :5]).shape == (1, 5)
    # batching does not change the result
    small = clone(est).set_params(batch_size=7).fit(X, y)
    np.testing.assert_allclose(small.predict(X[:1]), rates[:1], rtol=1e-4, atol=1e-9)


def test_noise_normalisation_makes_units_irrelevant(data):
    X, y = data
    est = _logreg().fit(X[:3], y[:3])
    np.testing.assert_allclose(est.predict(0.01 * X[3:] - 7), est.predict(X[3:]), atol=1e-6)


def test_gridsearch_nested_params_and_logo(data):
    X, y = data
    search = GridSearchCV(
        _logreg(), {"estimator__C": [1e-6, 1.0], "window": [16]}, cv=LeaveOneGroupOut()
    )
    search.fit(X, y, groups=[0, 0, 1, 1])
    assert search.best_params_["estimator__C"] == 1.0
    assert search.best_estimator_.estimator_.C == 1.0


def test_clone_and_pickle(data):
    X, y = data
    est = _logreg().fit(X[:3], y[:3])
    assert not hasattr(clone(est), "estimator_")
    assert est.estimator.__dict__.get("coef_") is None  # the given classifier is untouched
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.predict(X[3:]), est.predict(X[3:]))


def test_reproducible_with_random_state(data):
    X, y = data
    a = _logreg().fit(X[:3], y[:3]).predict(X[3:])
    b = _logreg().fit(X[:3], y[:3]).predict(X[3:])
    np.testing.assert_array_equal(a, b)


def test_with_spike_classifier(data):
    """The package's Keras CNN as the window classifier (tiny, real training)."""
    from calgan_sklearn.models import SpikeClassifier

    X, y = data
    clf = SpikeClassifier(
        filters=4, depth=1, epochs=5, batch_size=32, learning_rate=3e-3, random_state=0
    )
    est = SlidingWindowInference(clf, window=32, max_windows=3000, random_state=0)
    est.fit(X[:3], y[:3])
    assert est.estimator_.n_features_in_ == 32
    assert spikefinder_correlation(y[3:], est.predict(X[3:])) > 0.5


def test_errors(data):
    X, y = data
    with pytest.raises(NotFittedError):
        _logreg().predict(X)
    with pytest.raises(ValueError, match="contain no spike frames"):
        _logreg().fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="needs spike counts y"):
        _logreg().fit(X)
    with pytest.raises(ValueError, match="The 'window' parameter"):
        _logreg(window=0).fit(X, y)
    with pytest.raises(ValueError, match="The 'balance' parameter"):
        _logreg(balance=1.5).fit(X, y)
    with pytest.raises(ValueError, match="The 'estimator' parameter"):
        SlidingWindowInference(estimator="logreg").fit(X, y)
    with pytest.raises(ValueError, match=r"calcium has shape \(4, 3000\) but spikes"):
        _logreg().fit(X, y[:, :100])
