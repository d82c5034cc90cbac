"""A deep spike-inference model trained on all the ground-truth data at hand.

The model files (``estimator.json`` with parameters and fitted state,
``model_.keras`` with the network) are written by
``benchmarks/train_pretrained.py`` and shipped as package data; those of the
fast variant (``load_pretrained(fast=True)``) by
``benchmarks/train_pretrained.py --fast``, in ``fast/``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["load_pretrained", "pretrained_info"]

_HERE = Path(__file__).resolve().parent


def _folder(fast):
    return _HERE / "fast" if fast else _HERE


def load_pretrained(fs=100.0, *, fast=False):
    """Load the pretrained :class:`~calgan_sklearn.models._inference.DeepSpikeInference`.

    The model was trained by ``python benchmarks/train_pretrained.py`` (seed 0,
    default parameters) on all the ground-truth recordings at hand, datasets
    weighted equally:

    - SpikeFinder training datasets 4 (OGB-1, mouse retina) and 5 (GCaMP6s,
      mouse V1), as published at 100 Hz;
    - all 20 CASCADE ground-truth datasets (OGB-1, Cal-520, GCaMP5k, GCaMP6f,
      GCaMP6s, GCaMP7f, jGCaMP8m, R-CaMP, jRCaMP1a, jRGECO1a; mouse and
      zebrafish; pyramidal cells and PV / SST interneurons; 8-500 Hz), dF/F at
      100 Hz, resampled in training to network rates of 7.5-30 Hz.

    SpikeFinder dataset 6 is left out because its neurons are CASCADE's DS17.
    The exact datasets, neurons, hours, training time and command are in
    ``pretrained_info()``. The SpikeFinder test data and all other CASCADE
    datasets were never used, so they remain a fair test of the model.

    Loading reads JSON and a ``.keras`` file with ``safe_mode=True``; no
    pickled code is executed.

    Parameters
    ----------
    fs : float, default=100.0
        Frame rate in Hz of the traces you will pass to ``predict`` (7.5-1000);
        the network runs at that rate (above 20 Hz on means of frame groups,
        with spike times placed back by the full-rate calcium).
    fast : bool, default=False
        Load the fast variant: the same training (same data, seed and
        ensemble), distilled into a network of 16 channels instead of 32
        (``distill_filters=16``). Its ``predict`` takes about 0.6 times as
        long; held out over the 23 datasets of ``benchmarks/bench_heldout.py``
        its dataset-mean correlation was 0.007 lower (benchmarks/RESULTS.md).
        For recordings of thousands of neurons where time matters more.

    Returns
    -------
    estimator : DeepSpikeInference
        Fitted, ready to ``predict`` spike rates (spikes per frame).

    Raises
    ------
    FileNotFoundError
        If the model files are missing (not yet trained in a source checkout).

    See Also
    --------
    calgan_sklearn.models._inference.DeepSpikeInference : The estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.pretrained import load_pretrained
    >>> est = load_pretrained(fs=30.0)
    >>> est.predict(np.random.default_rng(0).normal(size=(2, 900))).shape
    (2, 900)
    """
    from ..models._inference import DeepSpikeInference

    folder = _folder(fast)
    if not (folder / "estimator.json").is_file():
        raise FileNotFoundError(
            f"no pretrained model in {folder}; train it with "
            f"`python benchmarks/train_pretrained.py{' --fast' if fast else ''}`."
        )
    est = DeepSpikeInference.load(folder)
    return est.set_params(fs=fs)


def pretrained_info(*, fast=False):
    """What the pretrained model was trained on, as recorded when it was trained.

    ``benchmarks/train_pretrained.py`` saves it as the model's metadata
    (``estimator.save(path, metadata={"training": ...})``).

    Parameters
    ----------
    fast : bool, default=False
        That of the fast variant (``load_pretrained(fast=True)``).

    Returns
    -------
    info : dict
        Datasets, neurons, traces, hours of data, seed, training time, peak
        memory and the command that produced the model.

    See Also
    --------
    calgan_sklearn.models.load_metadata : The metadata of any saved estimator.

    Examples
    --------
    >>> from calgan_sklearn.pretrained import pretrained_info
    >>> info = pretrained_info()
    >>> info["neurons"], len(info["datasets"])
    (254, 22)
    """
    from ..models import load_metadata

    return load_metadata(_folder(fast)).get("training", {})
