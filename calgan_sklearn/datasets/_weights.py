"""Sample weights for training on several datasets at once."""

from __future__ import annotations

import numpy as np

from ..signal import trace_lengths

__all__ = ["dataset_weights"]


def dataset_weights(calcium, groups):
    """Per-trace weights that give every dataset the same share of training.

    Each trace gets ``1 / (frames of its dataset)``, so long datasets do not
    dominate a model trained on several (pass as ``sample_weight``).

    Parameters
    ----------
    calcium : array-like of shape (n_traces, n_frames)
        Traces, NaN-padded at the end.
    groups : array-like of shape (n_traces,)
        Dataset label of each trace (e.g. a loader Bunch's ``dataset``).

    Returns
    -------
    weights : ndarray of shape (n_traces,)

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.datasets import dataset_weights
    >>> dataset_weights(np.ones((3, 4)), ["a", "a", "b"])
    array([0.125, 0.125, 0.25 ])
    """
    lengths = trace_lengths(calcium).astype(float)
    labels = np.asarray(groups)
    if labels.shape != (len(lengths),):
        raise ValueError(
            f"groups has shape {labels.shape} but calcium has {len(lengths)} traces; "
            "give one dataset label per trace."
        )
    weights = np.empty(len(labels))
    for label in np.unique(labels):
        mask = labels == label
        weights[mask] = 1.0 / max(lengths[mask].sum(), 1.0)
    return weights
