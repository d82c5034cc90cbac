"""Inference over many recordings as Dask tasks.

A hyperparameter search needs nothing from this module: scikit-learn's
``GridSearchCV`` runs its fits on a Dask cluster under joblib's Dask backend
(``with joblib.parallel_backend("dask"): search.fit(X, y)``). What joblib does
not cover is applying one fitted estimator to many recordings, each on the
worker that holds or reads it; :func:`predict_many` does that with
``dask.distributed`` futures. Dask is an optional dependency
(``pip install calgan_sklearn[dask]``).
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["predict_many"]


def predict_many(estimator, recordings, *, client=None):
    """Predict spike rates of many recordings as Dask tasks, sending the estimator once.

    The fitted estimator is scattered to every worker once (a Keras model is
    pickled with its weights) and ``estimator.predict`` is mapped over the
    recordings, one task each, on whichever workers are free; each worker
    predicts in bounded memory (see the estimator's ``predict``).

    Parameters
    ----------
    estimator : fitted estimator
        A trace-level spike-inference estimator (``DeepSpikeInference``,
        ``load_pretrained()``, a baseline) with ``fs`` set to the recordings'
        frame rate.
    recordings : iterable of array-like or path
        Each a set of traces of shape ``(n_traces, n_frames)``, NaN-padded at the
        end: an array (sent to a worker), or the path of a ``.npy`` file, which
        the worker memory-maps itself (nothing is sent but the path, so the file
        must be readable where the workers run, e.g. on a shared file system).
    client : dask.distributed.Client, default=None
        The cluster to run on; None uses the current default client
        (the last ``Client`` created in this process).

    Returns
    -------
    rates : list of ndarray
        ``estimator.predict`` of each recording, in the order given.

    Raises
    ------
    ImportError
        If ``dask.distributed`` is not installed.
    ValueError
        If ``client`` is None and no client exists.

    Examples
    --------
    >>> import numpy as np
    >>> from dask.distributed import Client, LocalCluster
    >>> from calgan_sklearn.baselines import OASIS
    >>> from calgan_sklearn.parallel import predict_many
    >>> rng = np.random.default_rng(0)
    >>> recordings = [rng.normal(size=(3, 600)), rng.normal(size=(2, 900))]
    >>> est = OASIS(fs=30.0).fit(recordings[0])
    >>> with LocalCluster(n_workers=1, processes=False) as cluster, Client(cluster):
    ...     rates = predict_many(est, recordings)
    >>> [r.shape for r in rates]
    [(3, 600), (2, 900)]
    """
    check_is_fitted(estimator)
    client = _get_client(client)
    remote = client.scatter(estimator, broadcast=True)
    futures = [
        client.submit(_predict_one, remote, _as_task_input(r), pure=False) for r in recordings
    ]
    return client.gather(futures)


def _get_client(client):
    try:
        from dask.distributed import default_client
    except ImportError as exc:
        raise ImportError(
            "predict_many needs dask.distributed; install it with "
            "`pip install calgan_sklearn[dask]` (or `pip install 'dask[distributed]'`)."
        ) from exc
    if client is not None:
        return client
    try:
        return default_client()
    except ValueError as exc:
        raise ValueError(
            "predict_many found no Dask client; start one first, e.g. "
            "`Client(LocalCluster())` on this machine or `Client('tcp://scheduler:8786')` "
            "on a cluster, or pass client=."
        ) from exc


def _as_task_input(recording):
    """A path stays a path (read by the worker); anything else becomes an array."""
    if isinstance(recording, (str, os.PathLike)):
        return os.fspath(recording)
    return np.asarray(recording)


def _predict_one(estimator, recording):
    if isinstance(recording, str):
        recording = np.load(recording, mmap_mode="r")
    return estimator.predict(recording)
