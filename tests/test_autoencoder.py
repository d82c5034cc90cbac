"""CalciumAutoencoder: transform / inverse_transform, VAE sampling, pipelines."""

import pickle

import numpy as np
import pytest
from _presets import TINY_AUTOENCODER as TINY
from _presets import simulated_windows
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

from calgan_sklearn.models import CalciumAutoencoder, load


@pytest.fixture(scope="module")
def windows():
    return simulated_windows(n=300, noise_level=0.5)


@pytest.mark.parametrize("normalize, n_out", [("noise", 5), ("global", 3), (None, 3)])
def test_transform_shapes_and_names(windows, normalize, n_out):
    X = windows[0]
    ae = CalciumAutoencoder(**TINY, normalize=normalize, random_state=0).fit(X)
    Xt = ae.transform(X)
    assert Xt.shape == (len(X), n_out)
    assert len(ae.get_feature_names_out()) == n_out
    assert ae.get_feature_names_out()[0] == "latent0"
    assert ae.inverse_transform(Xt).shape == X.shape
    assert ae.score(X) == pytest.approx(-np.mean((ae.inverse_transform(Xt) - X) ** 2))
    with pytest.raises(ValueError, match=f"codes have {n_out + 1} columns"):
        ae.inverse_transform(np.c_[Xt, Xt[:, :1]])


@pytest.mark.slow
def test_training_improves_reconstruction(windows):
    X = windows[0]
    short = CalciumAutoencoder(**{**TINY, "epochs": 1}, random_state=0).fit(X)
    long = CalciumAutoencoder(**{**TINY, "epochs": 15}, random_state=0).fit(X)
    assert long.score(X) > short.score(X)
    assert long.history_["loss"][-1] < long.history_["loss"][0]


@pytest.mark.slow
def test_variational_sampling_and_kl(windows, tmp_path):
    X = windows[0]
    vae = CalciumAutoencoder(**TINY, variational=True, random_state=0).fit(X)
    Xs, ys = vae.sample(4, random_state=0)
    assert Xs.shape == (4, X.shape[1]) and ys is None and np.isfinite(Xs).all()
    np.testing.assert_array_equal(Xs, vae.sample(4, random_state=0)[0])
    # the KL term is part of the loss: the VAE's loss exceeds a plain AE's from the same start
    vae.model_(X[:8, :, None].astype("float32"), training=True)
    assert len(vae.model_.losses) == 1 and float(vae.model_.losses[0]) > 0
    for restored in (pickle.loads(pickle.dumps(vae)), load(vae.save(tmp_path / "vae"))):
        np.testing.assert_array_equal(restored.transform(X), vae.transform(X))
        np.testing.assert_array_equal(restored.sample(4, random_state=0)[0], Xs)
    with pytest.raises(ValueError, match="refit with variational=True"):
        CalciumAutoencoder(**TINY).fit(X).sample(2)


@pytest.mark.slow
def test_autoencoder_features_classify_spike_windows(windows):
    X, y, _ = windows
    pipe = make_pipeline(
        CalciumAutoencoder(latent_dim=6, filters=8, depth=2, epochs=10, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    pipe.fit(X[:220], y[:220])
    auc = roc_auc_score(y[220:], pipe.predict_proba(X[220:])[:, 1])
    assert auc > 0.65, auc
