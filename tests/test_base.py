"""The shared Keras machinery, exercised through SpikeClassifier (the smallest estimator)."""

import pickle

import joblib
import numpy as np
import pytest
from _presets import TINY_CLASSIFIER as TINY
from _presets import simulated_windows
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut

from calgan_sklearn.models import SpikeClassifier, load


@pytest.fixture(scope="module")
def windows():
    return simulated_windows()


@pytest.fixture(scope="module")
def fitted(windows):
    X, y, _ = windows
    return SpikeClassifier(**TINY, random_state=0).fit(X, y)


def test_not_fitted_error(windows):
    with pytest.raises(NotFittedError):
        SpikeClassifier().predict(windows[0])


def test_same_random_state_same_weights_and_predictions(windows, fitted):
    X, y, _ = windows
    other = SpikeClassifier(**TINY, random_state=0).fit(X, y)
    for a, b in zip(fitted.model_.get_weights(), other.model_.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fitted.predict_proba(X), other.predict_proba(X))
    different = SpikeClassifier(**TINY, random_state=1).fit(X, y)
    assert not np.array_equal(fitted.predict_proba(X), different.predict_proba(X))


def test_pickle_and_joblib_round_trip(windows, fitted, tmp_path):
    X = windows[0]
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    joblib.dump(fitted, tmp_path / "clf.joblib")
    restored = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.history_ == fitted.history_


def test_save_load_predicts_identically(windows, fitted, tmp_path):
    X = windows[0]
    path = fitted.save(tmp_path / "clf")
    assert (path / "estimator.json").is_file() and (path / "model_.keras").is_file()
    for restored in (SpikeClassifier.load(path), load(path)):
        assert type(restored) is SpikeClassifier
        assert restored.get_params() == fitted.get_params()
        np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
        np.testing.assert_array_equal(restored.classes_, fitted.classes_)


def test_load_rejects_unknown_class_and_missing_dir(fitted, tmp_path):
    path = fitted.save(tmp_path / "clf")
    meta = (
        (path / "estimator.json")
        .read_text()
        .replace("calgan_sklearn.models._classifier.SpikeClassifier", "os.system")
    )
    (path / "estimator.json").write_text(meta)
    with pytest.raises(ValueError, match="not a BaseKerasEstimator of this package"):
        load(path)
    with pytest.raises(FileNotFoundError, match="nowhere does not exist; pass the directory"):
        load(tmp_path / "nowhere")


def test_save_keeps_metadata_and_refuses_what_json_cannot_hold(fitted, tmp_path):
    from calgan_sklearn.models import load_metadata

    info = {"data": {"neurons": 3, "hours": 0.5}, "command": "fit.py --seed 0"}
    path = fitted.save(tmp_path / "clf", metadata=info)
    assert load_metadata(path) == info
    assert load(path).get_params() == fitted.get_params()
    assert load_metadata(fitted.save(tmp_path / "plain")) == {}
    for bad, match in (
        (["x"], "metadata must be a dict, got list"),
        ({1: "x"}, "keys must be str"),
        ({"a": np.zeros(2)}, "only JSON values.*tolist"),
    ):
        with pytest.raises(ValueError, match=match):
            fitted.save(tmp_path / "bad", metadata=bad)
    assert not (tmp_path / "bad").exists()


def test_clone_of_fitted_is_unfitted(fitted, windows):
    cloned = clone(fitted)
    assert not hasattr(cloned, "model_")
    with pytest.raises(NotFittedError):
        cloned.predict(windows[0])


@pytest.mark.slow
def test_partial_fit_adds_one_epoch_and_warm_start_continues(windows):
    X, y, _ = windows
    clf = SpikeClassifier(**TINY, random_state=0).partial_fit(X, y)
    assert clf.n_iter_ == 1 and len(clf.history_["loss"]) == 1
    weights = [w.copy() for w in clf.model_.get_weights()]
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.history_["loss"]) == 2
    assert any(not np.array_equal(a, b) for a, b in zip(weights, clf.model_.get_weights()))

    warm = SpikeClassifier(**TINY, warm_start=True, random_state=0).fit(X, y)
    model = warm.model_
    warm.fit(X, y)
    assert warm.model_ is model and warm.n_iter_ == 2 * TINY["epochs"]
    cold = SpikeClassifier(**TINY, random_state=0).fit(X, y)
    model = cold.model_
    cold.fit(X, y)
    assert cold.model_ is not model and cold.n_iter_ == TINY["epochs"]


def test_early_stopping_records_validation_history(windows):
    X, y, _ = windows
    clf = SpikeClassifier(
        **{**TINY, "epochs": 3}, validation_fraction=0.2, patience=1, random_state=0
    ).fit(X, y)
    assert set(clf.history_) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert 1 <= clf.n_iter_ <= 3
    assert all(len(v) == clf.n_iter_ for v in clf.history_.values())


def test_user_callbacks_are_called(windows):
    import keras

    X, y, _ = windows
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    SpikeClassifier(**TINY, callbacks=[cb], random_state=0).fit(X, y)
    assert seen == [0, 1]


@pytest.mark.parametrize(
    "option", [{"distribute": True}, {"mixed_precision": True}, {"jit_compile": True}]
)
def test_device_options_run_on_cpu(windows, option):
    X, y, _ = windows
    clf = SpikeClassifier(**{**TINY, "epochs": 1}, random_state=0, **option).fit(X[:64], y[:64])
    proba = clf.predict_proba(X[:8])
    assert proba.shape == (8, 2) and np.allclose(proba.sum(axis=1), 1)
    assert proba.dtype == np.float64


@pytest.mark.parametrize(
    "params, match",
    [
        ({"filters": 0}, "'filters' parameter of SpikeClassifier must be"),
        ({"kernel_size": 2.5}, "'kernel_size' parameter"),
        ({"depth": -1}, "'depth' parameter"),
        ({"epochs": 0}, "'epochs' parameter"),
        ({"learning_rate": -1.0}, "'learning_rate' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"normalize": "robust"}, "'normalize' parameter"),
        ({"init": "not-a-gan-dir"}, "not-a-gan-dir does not exist; pass the directory"),
        ({"init": 3}, "'init' parameter"),
    ],
)
def test_bad_parameters_raise_at_fit(windows, params, match):
    X, y, _ = windows
    clf = SpikeClassifier(**{**TINY, **params})  # __init__ never validates
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        clf.fit(X[:40], y[:40])


def test_bad_input_messages(windows, fitted):
    X, y, _ = windows
    clf = SpikeClassifier(**TINY)
    Xnan = X[:40].copy()
    Xnan[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN .* in 1 window\(s\), first \[3\]"):
        clf.fit(Xnan, y[:40])
    with pytest.raises(ValueError, match="X contains inf"):
        clf.fit(np.where(Xnan == Xnan, Xnan, np.inf), y[:40])
    with pytest.raises(
        ValueError,
        match=r"shape \(n_windows, window_length\); got an array "
        r"with 1 dimension",
    ):
        clf.fit(X[0], y[:1])
    with pytest.raises(ValueError, match="with 3 dimension"):
        clf.fit(np.stack([X[:40], X[:40]], axis=-1), y[:40])
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        clf.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="y has only one class"):
        clf.fit(X[:40], np.zeros(40))
    with pytest.raises(ValueError, match="requires y to be passed"):
        clf.fit(X[:40], None)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X[:40], y[:30])
    with pytest.raises(ValueError, match="X has 16 features, but SpikeClassifier is expecting 32"):
        fitted.predict(X[:, :16])
    with pytest.raises(ValueError, match="leaves no windows"):
        SpikeClassifier(**TINY, validation_fraction=0.9).fit(X[:3], np.array([0, 1, 0]))


def test_three_d_single_channel_windows_accepted(windows, fitted):
    X = windows[0][:10]
    np.testing.assert_array_equal(fitted.predict_proba(X[..., None]), fitted.predict_proba(X))


@pytest.mark.slow
def test_grid_search_with_groups_in_two_workers(windows):
    X, y, groups = windows
    search = GridSearchCV(
        SpikeClassifier(**{**TINY, "epochs": 1}, random_state=0),
        {"filters": [2, 4]},
        cv=LeaveOneGroupOut(),
        scoring="roc_auc",
        n_jobs=2,
        error_score="raise",
    )
    search.fit(X[:160], y[:160], groups=groups[:160])
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.n_iter_ == 1


def _fit_tiny(name, **params):
    """A tiny fitted estimator of each kind (seconds)."""
    from calgan_sklearn.models import CalciumAutoencoder, CalciumGAN, DeepSpikeInference

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 16))
    small = dict(filters=4, depth=1, epochs=1, random_state=0, **params)
    if name == "DeepSpikeInference":
        spikes = rng.poisson(0.05, size=(2, 600)).astype(float)
        kernel = np.exp(-np.arange(100) / 20.0)
        calcium = np.array([np.convolve(s, kernel)[:600] for s in spikes])
        calcium += rng.normal(0, 0.1, calcium.shape)
        est = DeepSpikeInference(fs=30.0, ensemble_size=1, crop_length=32, batch_size=8, **small)
        return est.fit(calcium, spikes)
    if name == "SpikeClassifier":
        return SpikeClassifier(**small).fit(X, (X[:, 8] > 0).astype(int))
    kind = {"CalciumGAN": CalciumGAN, "CalciumAutoencoder": CalciumAutoencoder}[name]
    return kind(latent_dim=2, **small).fit(X)


def _optimizers(est):
    model = est.model_
    return (
        [model.d_optimizer, model.g_optimizer]
        if hasattr(model, "d_optimizer")
        else [model.optimizer]
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["SpikeClassifier", "CalciumAutoencoder", "CalciumGAN", "DeepSpikeInference"]
)
def test_float16_training_is_loss_scaled_in_every_estimator(name, monkeypatch):
    """mixed_precision=True on a GPU means float16, which needs loss scaling.

    There is no GPU here, so the GPU's policy (``mixed_float16``) is forced on
    the CPU, where TensorFlow runs it too: every optimizer an estimator trains
    with, the GAN's two included, is a ``LossScaleOptimizer``.
    """
    import keras

    from calgan_sklearn.models import _base

    monkeypatch.setattr(_base, "gpu_available", lambda: True)
    est = _fit_tiny(name, mixed_precision=True)
    opts = _optimizers(est)
    assert opts and all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in opts)
    for name in est._keras_attributes:  # the fitted networks compute in float16
        assert "mixed_float16" in {layer.dtype_policy.name for layer in getattr(est, name).layers}
    assert all(np.isfinite(v).all() for v in est.history_.values())


def test_bfloat16_and_float32_training_are_not_loss_scaled(monkeypatch):
    import keras

    from calgan_sklearn.models import _base

    monkeypatch.setattr(_base, "gpu_available", lambda: False)  # CPU: mixed_bfloat16
    for params in ({"mixed_precision": False}, {"mixed_precision": True}):
        opts = _optimizers(_fit_tiny("SpikeClassifier", **params))
        assert not any(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in opts)


@pytest.mark.parametrize(
    "name", ["SpikeClassifier", "CalciumAutoencoder", "CalciumGAN", "DeepSpikeInference"]
)
def test_every_parameter_is_documented_once_with_its_default(name):
    import inspect

    import calgan_sklearn.models as models

    docscrape = pytest.importorskip("numpydoc.docscrape")
    cls = getattr(models, name)
    assert "{common_parameters}" not in cls.__doc__
    documented = [p.name for p in docscrape.ClassDoc(cls, config={})["Parameters"]]
    signature = inspect.signature(cls.__init__).parameters
    assert documented == [p for p in signature if p != "self"]
    for p in docscrape.ClassDoc(cls, config={})["Parameters"]:
        if p.name in ("epochs", "learning_rate", "mixed_precision"):
            assert p.type.endswith(f"default={signature[p.name].default!r}")
