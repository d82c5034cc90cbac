"""Keras backends other than TensorFlow: what trains there, and what says it cannot.

The estimators are tested under TensorFlow everywhere else. Here each check
runs in a fresh Python with ``KERAS_BACKEND=jax`` (Keras picks its backend
once, at import): the interpreter of the tests when it has jax, else the one
named by ``CALGAN_JAX_PYTHON`` (e.g. a virtual environment with jax and
without TensorFlow); skipped when there is neither.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from calgan_sklearn.models._base import _ArrayBatches

ROOT = Path(__file__).resolve().parents[1]
JAX_PYTHON = os.environ.get("CALGAN_JAX_PYTHON") or (
    sys.executable if importlib.util.find_spec("jax") is not None else None
)
needs_jax = pytest.mark.skipif(
    JAX_PYTHON is None, reason="jax is not installed (or set CALGAN_JAX_PYTHON)"
)

#: Simulated traces for DeepSpikeInference and windows for the window models.
DATA = """
import sys
import numpy as np
from calgan_sklearn.datasets import make_calcium, make_windows

data = make_calcium(n_neurons=3, duration=30.0, fs=100.0, random_state=0)
X, y = data.calcium.copy(), data.spikes.copy()
X[0, -500:] = np.nan  # NaN-padded, as recordings of different lengths are
Xw, yw, _ = make_windows(data.calcium, data.spikes, window=32, stride=8, target="center")
yw = (yw > 0).astype(int)
"""


def run_under_jax(code, tmp_path):
    """Run ``DATA`` then ``code`` under Keras's JAX backend; return its stdout."""
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    script = DATA + textwrap.dedent(code)
    result = subprocess.run(
        [JAX_PYTHON, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_array_batches_cover_every_row_once_per_epoch_in_a_seeded_order():
    X, y = np.arange(10.0)[:, None], np.arange(10)
    first = _ArrayBatches((X, y), 4, shuffle=True, seed=3)
    again = _ArrayBatches((X, y), 4, shuffle=True, seed=3)
    assert len(first) == 3
    epoch = [first[i] for i in range(len(first))]
    assert [len(b[1]) for b in epoch] == [4, 4, 2]
    rows = np.concatenate([b[1] for b in epoch])
    assert sorted(rows) == list(range(10)) and list(rows) != list(range(10))
    assert all(np.array_equal(bx[:, 0], by) for bx, by in epoch)  # X and y stay paired
    assert np.array_equal(rows, np.concatenate([again[i][1] for i in range(3)]))
    first.on_epoch_end()
    reshuffled = np.concatenate([first[i][1] for i in range(3)])
    assert sorted(reshuffled) == list(range(10)) and not np.array_equal(reshuffled, rows)


def test_array_batches_keep_the_order_without_shuffling_and_unwrap_one_array():
    batches = _ArrayBatches((np.arange(5.0),), 2, shuffle=False, seed=0)
    batches.on_epoch_end()
    assert [batches[i].tolist() for i in range(len(batches))] == [[0, 1], [2, 3], [4]]


@needs_jax
def test_jax_backend_imports_without_tensorflow_and_names_what_needs_it(tmp_path):
    out = run_under_jax(
        """
        import keras
        import calgan_sklearn.cli
        from calgan_sklearn import SpikeClassifier

        assert keras.backend.backend() == "jax"
        print("tensorflow imported:", "tensorflow" in sys.modules)
        try:
            SpikeClassifier(filters=4, depth=1, epochs=1, distribute=True).fit(Xw, yw)
        except RuntimeError as exc:
            print("raised:", exc)
        """,
        tmp_path,
    )
    assert "tensorflow imported: False" in out
    assert "raised: SpikeClassifier(distribute=True)" in out
    assert "KERAS_BACKEND=tensorflow" in out


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_calcium_gan_trains_on_windows_and_traces_under_jax(tmp_path, mixed_precision):
    out = run_under_jax(
        f"""
        from calgan_sklearn import CalciumGAN
        from calgan_sklearn.models import load
        from calgan_sklearn.models._base import gpu_available

        print("gpu:", gpu_available())
        net = dict(filters=8, depth=1, latent_dim=2, random_state=0,
                   mixed_precision={mixed_precision})
        gan = CalciumGAN(**net, epochs=4, validation_fraction=0.2).fit(Xw, yw)
        assert gan.n_iter_ == 4
        for name in ("d_loss", "g_loss", "gp", "w_dist", "val_w_dist"):
            assert len(gan.history_[name]) == 4 and np.isfinite(gan.history_[name]).all()
        # the critic learned which side is real: real windows outscore white noise
        noise = np.random.default_rng(0).normal(Xw.mean(), Xw.std(), Xw.shape)
        margin = gan.critic_score(Xw, yw).mean() - gan.critic_score(noise, yw).mean()
        print("critic margin:", margin)
        assert margin > 0
        Xs, ys = gan.sample(6, y=np.array([0, 1] * 3), random_state=0)
        assert Xs.shape == (6, Xw.shape[1]) and np.isfinite(Xs).all()
        if not gpu_available():  # GPU kernels need not be deterministic
            again = CalciumGAN(**net, epochs=4, validation_fraction=0.2).fit(Xw, yw)
            np.testing.assert_array_equal(again.sample(6, y=ys, random_state=0)[0], Xs)

        fs = 100.0
        trace = CalciumGAN(fs=fs, **net, crop_seconds=2.0, epochs=2, batch_size=8)
        trace.fit(X, y)  # NaN-padded whole traces
        calcium, spikes = trace.sample(y=y[:, :1000], random_state=0)
        assert calcium.shape == (3, 1000) and np.isfinite(calcium).all()
        trace.save("gan")
        np.testing.assert_allclose(
            load("gan").sample(y=spikes, random_state=0)[0], calcium, rtol=1e-5, atol=1e-6
        )
        trace.partial_fit(X, y)
        assert trace.n_iter_ == 3
        assert not np.allclose(trace.sample(y=spikes, random_state=0)[0], calcium)
        policies = {{layer.dtype_policy.name for layer in trace.generator_.layers}}
        print("policies:", sorted(policies))
        """,
        tmp_path,
    )
    mixed = "mixed_float16" if "gpu: True" in out else "mixed_bfloat16"
    assert (mixed in out) == mixed_precision


@needs_jax
@pytest.mark.slow
@pytest.mark.parametrize("mixed_precision", [False, True])
def test_deep_spike_inference_trains_predicts_and_round_trips_under_jax(tmp_path, mixed_precision):
    out = run_under_jax(
        f"""
        from calgan_sklearn import DeepSpikeInference
        from calgan_sklearn.models import load

        params = dict(filters=8, depth=2, epochs=1, ensemble_size=2, distill_epochs=1,
                      random_state=0, mixed_precision={mixed_precision})
        est = DeepSpikeInference(**params).fit(X, y)
        rates = est.predict(X)
        assert rates.shape == X.shape
        assert np.array_equal(np.isnan(rates), np.isnan(X)), "NaN padding not kept"
        assert np.all(rates[~np.isnan(X)] >= 0)
        from calgan_sklearn.models._base import gpu_available

        gpu = gpu_available()
        print("gpu:", gpu)
        same = DeepSpikeInference(**params).fit(X, y).predict(X)
        if not gpu:  # GPU kernels need not be deterministic
            np.testing.assert_array_equal(same, rates)  # random_state: same rates
        est.save("model")
        np.testing.assert_allclose(load("model").predict(X), rates, rtol=1e-6, atol=1e-9)
        policies = {{layer.dtype_policy.name for layer in est.model_.layers}}
        print("policies:", sorted(policies))
        """,
        tmp_path,
    )
    # mixed precision: float16 with loss scaling on a GPU, bfloat16 on a CPU
    mixed = "mixed_float16" if "gpu: True" in out else "mixed_bfloat16"
    assert (mixed in out) == mixed_precision


@needs_jax
@pytest.mark.slow
def test_window_estimators_train_and_predict_under_jax(tmp_path):
    out = run_under_jax(
        """
        from calgan_sklearn import CalciumAutoencoder, SpikeClassifier
        from calgan_sklearn.models import load

        net = dict(filters=4, kernel_size=3, depth=1, batch_size=32, epochs=2, random_state=0)
        clf = SpikeClassifier(**net, validation_fraction=0.2).fit(Xw, yw)
        proba = clf.predict_proba(Xw)
        assert proba.shape == (len(Xw), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
        clf.save("clf")
        np.testing.assert_allclose(load("clf").predict_proba(Xw), proba, atol=1e-6)
        ae = CalciumAutoencoder(**net, latent_dim=3).fit(Xw)
        codes = ae.transform(Xw)
        assert len(codes) == len(Xw) and np.isfinite(codes).all()
        print("epochs:", clf.n_iter_, ae.n_iter_)
        """,
        tmp_path,
    )
    assert "epochs: 2 2" in out
