"""Classical baselines: recovery on simulations, the trace convention, search, bad input."""

import pickle

import numpy as np
import pytest
from _presets import ar1_traces
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from calgan_sklearn.baselines import (
    OASIS,
    DerivativeDetector,
    WienerDeconvolution,
    robust_noise_sd,
)
from calgan_sklearn.metrics import spikefinder_correlation

ESTIMATORS = [OASIS, WienerDeconvolution, DerivativeDetector]


@pytest.fixture(scope="module")
def clean():
    return ar1_traces(0)


@pytest.fixture(scope="module")
def noisy():
    return ar1_traces(1, noise=0.4)


def _corr(est, X, y, fs=100.0):
    return spikefinder_correlation(y, est.predict(X), fs=fs)


@pytest.mark.parametrize(
    "params", [{}, {"tau_decay": 0.5}, {"p": 2}, {"penalty": 0}, {"g": (np.exp(-1 / 50),)}]
)
def test_oasis_recovers_clean_ar1_spikes(clean, params):
    X, y = clean
    est = OASIS(**params).fit(X, y)
    assert _corr(est, X, y) > 0.9
    # calibrated: the expected number of spikes matches the truth on training data
    assert est.predict(X).sum() == pytest.approx(y.sum(), rel=0.1)


def test_wiener_and_derivative_floor_on_clean_data(clean):
    X, y = clean
    wiener = WienerDeconvolution().fit(X, y)
    assert wiener.tau_decay_ in (0.35, 0.5, 0.7)  # grid value nearest the true 0.5 s
    assert _corr(wiener, X, y) > 0.85
    assert _corr(DerivativeDetector().fit(X, y), X, y) > 0.8


def test_ordering_on_noisy_data(noisy):
    """Deconvolution with the right kernel beats the raw derivative and a trivial predictor."""
    X, y = noisy
    oasis = _corr(OASIS(tau_decay=0.5).fit(X, y), X, y)
    deriv = _corr(DerivativeDetector(sigma=0.0, threshold=0.0).fit(X, y), X, y)
    raw = spikefinder_correlation(y, X)  # the fluorescence itself as a "rate"
    assert oasis > deriv > raw
    assert oasis > 0.6


def test_wiener_tau_without_spikes_is_estimated(clean):
    X, _ = clean
    est = WienerDeconvolution().fit(X)
    assert est.calibration_scale_ == 1.0
    assert 0.3 < est.tau_decay_ < 0.8


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_trace_convention(Est, clean):
    X, y = clean
    X, y = X[:3].copy(), y[:3].copy()
    X[1, 3000:] = np.nan
    y[1, 3000:] = np.nan
    est = Est().fit(X, y)
    rates = est.predict(X)
    assert rates.shape == X.shape
    np.testing.assert_array_equal(np.isnan(rates), np.isnan(X))
    assert np.nanmin(rates) >= 0
    # a trace predicts the same alone as inside a padded batch
    np.testing.assert_allclose(est.predict(X[1, :3000])[0], rates[1, :3000], rtol=1e-8)
    assert -1 <= est.score(X, y) <= 1


def test_predict_scale_invariant_with_noise_normalisation(clean):
    X, y = clean
    est = OASIS(tau_decay=0.5).fit(X, y)
    np.testing.assert_allclose(est.predict(50.0 * X), est.predict(X), rtol=1e-5, atol=1e-8)


def test_time_constants_transfer_across_frame_rates():
    X30, y30 = ar1_traces(3, n_traces=2, n_frames=1500, fs=30.0, tau=0.5)
    est = OASIS(tau_decay=0.5, fs=30.0).fit(X30, y30)
    assert spikefinder_correlation(y30, est.predict(X30), fs=30.0) > 0.9
    assert est.get_params()["fs"] == 30.0


def test_gridsearch_with_leave_one_group_out(clean):
    X, y = clean
    groups = np.array(["a", "a", "b", "b"])
    search = GridSearchCV(WienerDeconvolution(), {"tau_decay": [0.05, 0.5]}, cv=LeaveOneGroupOut())
    search.fit(X, y, groups=groups)
    assert search.best_params_ == {"tau_decay": 0.5}
    assert search.cv_results_["mean_test_score"][1] > search.cv_results_["mean_test_score"][0]


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_clone_and_pickle(Est, clean):
    X, y = clean
    est = Est().fit(X[:2], y[:2])
    assert not hasattr(clone(est), "calibration_scale_")
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.predict(X[2:]), est.predict(X[2:]))


def test_calibration_does_not_look_at_test_traces(clean):
    X, y = clean
    est = OASIS(tau_decay=0.5).fit(X[:2], y[:2])
    scale = est.calibration_scale_
    est.predict(X[2:])
    assert est.calibration_scale_ == scale
    assert OASIS(calibrate=False).fit(X, y).calibration_scale_ == 1.0


def test_robust_noise_sd():
    x = np.random.default_rng(0).normal(scale=3.0, size=20000)
    assert robust_noise_sd(x) == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_not_fitted(Est, clean):
    with pytest.raises(NotFittedError):
        Est().predict(clean[0])


def test_mismatched_lengths(clean):
    X, y = clean
    with pytest.raises(ValueError, match=r"calcium has shape \(4, 4000\) but spikes has shape"):
        OASIS().fit(X, y[:, :-10])
    y = y.copy()
    y[1, 3990:] = np.nan
    with pytest.raises(ValueError, match="trace 1 has 4000 frames but spikes has 3990"):
        OASIS().fit(X, y)


def test_nan_only_trace(clean):
    X = clean[0].copy()
    X[2] = np.nan
    with pytest.raises(ValueError, match=r"trace\(s\) \[2\] contain only NaN"):
        WienerDeconvolution(tau_decay=0.5).fit(X)


def test_wrong_shape():
    with pytest.raises(ValueError, match="must have shape"):
        OASIS().fit(np.zeros((2, 3, 4)))


@pytest.mark.parametrize(
    "est, match",
    [
        (OASIS(p=3), "The 'p' parameter of OASIS must be"),
        (OASIS(penalty=2), "The 'penalty' parameter of OASIS must be"),
        (OASIS(normalize="max"), "The 'normalize' parameter"),
        (OASIS(g=(0.9,), tau_decay=0.5), "give either g"),
        (OASIS(g=(0.9, 0.1)), r"g must hold 1 finite AR coefficient\(s\) for p=1"),
        (OASIS(g=(1.2,)), r"g for AR\(1\) must lie in \(0, 1\)"),
        (OASIS(tau_rise=0.05), "needs the AR\\(2\\) model"),
        (OASIS(p=2, tau_decay=0.5), "p=2 needs both tau_decay and tau_rise"),
        (WienerDeconvolution(tau_decay=0.1, tau_rise=0.2), "must be shorter than"),
        (WienerDeconvolution(snr=-1.0), "The 'snr' parameter"),
        (DerivativeDetector(sigma=-0.1), "The 'sigma' parameter"),
        (OASIS(fs=0), "The 'fs' parameter"),
    ],
)
def test_bad_parameters(est, match, clean):
    with pytest.raises(ValueError, match=match):
        est.fit(clean[0][:2], clean[1][:2])


def test_too_short_trace():
    # OASIS's noise and AR estimates need 8 frames (LAPACK failed on 2 or 4)
    with pytest.raises(ValueError, match=r"at least 8 frames.*\[0\]"):
        OASIS(calibrate=False).fit(np.ones((1, 9))).predict(np.array([[1.0, 2.0, np.nan]]))


@pytest.mark.realdata
def test_spikefinder_correlation_floor(spikefinder_dir):
    """On held-out neurons of dataset 4 (OGB-1) the baselines are well above chance."""
    from calgan_sklearn.datasets import load_spikefinder

    data = load_spikefinder(spikefinder_dir, datasets=["4"])
    train, test = slice(0, 3), slice(3, None)
    for est in (OASIS(), WienerDeconvolution()):
        rates = est.fit(data.calcium[train], data.spikes[train]).predict(data.calcium[test])
        assert spikefinder_correlation(data.spikes[test], rates) > 0.15, est
