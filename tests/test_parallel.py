"""Dask: grid search on worker processes, predict_many, and the cluster docs page."""

import re
from pathlib import Path

import numpy as np
import pytest
from _presets import TINY_DEEP, ar1_traces
from sklearn.model_selection import GridSearchCV, KFold

from calgan_sklearn import DeepSpikeInference
from calgan_sklearn.baselines import OASIS
from calgan_sklearn.parallel import predict_many

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

DOCS = Path(__file__).resolve().parents[1] / "docs"


# before the module's cluster exists (the docs page starts a cluster of its own)
def test_predict_many_needs_a_fitted_estimator_and_a_client():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        predict_many(OASIS(), [np.ones((1, 10))])
    est = OASIS(fs=30.0).fit(ar1_traces(0, n_traces=1, n_frames=300)[0])
    try:
        distributed.default_client()
    except ValueError:  # no client in this process yet: predict_many says how to start one
        with pytest.raises(ValueError, match="no Dask client"):
            predict_many(est, [np.ones((1, 10))])


@pytest.mark.slow
def test_cluster_page_runs(tmp_path, monkeypatch):
    """The code of docs/cluster.rst runs (all but the SLURM example, which needs SLURM)."""
    text = (DOCS / "cluster.rst").read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text)
    blocks = [re.sub(r"(?m)^   ", "", b) for b in blocks if "dask_jobqueue" not in b]
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    plane = tmp_path / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    F = ar1_traces(2, n_traces=3, n_frames=900, fs=30.0)[0] + 100
    np.save(plane / "F.npy", F.astype(np.float32))
    namespace = {}
    for code in blocks:
        exec(compile(code, "docs/cluster.rst", "exec"), namespace)  # noqa: S102
    assert namespace["rates"][0].shape == (4, 600)
    assert set(namespace["search"].best_params_) == {"depth", "learning_rate"}


@pytest.fixture(scope="module")
def client():
    """Two worker processes with one thread each, as on a small cluster."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _search():
    grid = {"depth": [1, 2], "learning_rate": [1e-3, 3e-3]}
    return GridSearchCV(
        DeepSpikeInference(fs=100.0, **{**TINY_DEEP, "batch_size": 8}), grid, cv=KFold(2)
    )


@pytest.mark.slow
def test_grid_search_on_dask_matches_sequential(client):
    """4 candidates x 2 folds on 2 worker processes: the sequential search's scores."""
    X, y = ar1_traces(0, n_traces=6, n_frames=800)
    sequential = _search().set_params(n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"):
        parallel = _search().fit(X, y)
    assert len(parallel.cv_results_["params"]) == 4
    for key in ["mean_test_score", *(f"split{k}_test_score" for k in range(2))]:
        np.testing.assert_array_equal(parallel.cv_results_[key], sequential.cv_results_[key])
    assert parallel.best_params_ == sequential.best_params_


def test_predict_many_matches_predict(client, tmp_path):
    X, y = ar1_traces(1, n_traces=3, n_frames=600, fs=30.0, tau=0.3)
    est = OASIS(fs=30.0).fit(X, y)
    path = tmp_path / "rec.npy"
    np.save(path, X[:2].astype(np.float32))
    recordings = [X, X[1:], path]
    rates = predict_many(est, recordings, client=client)
    assert len(rates) == 3
    np.testing.assert_array_equal(rates[0], est.predict(X))
    np.testing.assert_array_equal(rates[1], est.predict(X[1:]))
    np.testing.assert_array_equal(rates[2], est.predict(np.load(path)))
