"""Held-out evaluation of trace-level estimators: one engine for every benchmark.

Each fold of a group splitter (by default
:class:`~sklearn.model_selection.LeaveOneGroupOut`, groups being the per-trace
``dataset`` labels of a loader Bunch) is fitted by scikit-learn's
:func:`~sklearn.model_selection.cross_validate`, which clones the estimator,
cuts fit parameters such as ``sample_weight`` to the training traces and times
the fit. The fitted estimator then predicts each held-out group, timed, and
the rates are scored with :mod:`calgan_sklearn.metrics`. The result is a tidy
table with one row per (fold, held-out group, method); ``calgan benchmark``
and the scripts in ``benchmarks/`` are thin callers of :func:`cross_evaluate`.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import BaseCrossValidator, LeaveOneGroupOut, check_cv, cross_validate
from sklearn.utils import Bunch

from ._realism import (
    REFERENCES,
    plot_realism,
    realism_report,
    reference_generators,
    spectrum_distance,
    split_neurons,
    sta_error,
    tstr_score,
    two_sample_auc,
)
from ._validation import check_fs, check_traces
from .signal import trace_lengths

__all__ = [
    "cross_evaluate",
    "score_rates",
    "GroupFolds",
    "COLUMNS",
    "two_sample_auc",
    "sta_error",
    "spectrum_distance",
    "realism_report",
    "tstr_score",
    "split_neurons",
    "reference_generators",
    "plot_realism",
    "REFERENCES",
]

#: Columns of the table returned by :func:`cross_evaluate`.
COLUMNS = [
    "fold",
    "dataset",
    "method",
    "fs",
    "n_traces",
    "n_frames",
    "correlation",
    "error",
    "bias",
    "fit_time_s",
    "predict_time_s",
    "frames_per_s",
]


def score_rates(spikes, rates, fs, *, neuron=None, smooth_prediction=True):
    """SpikeFinder correlation and CASCADE error and bias of one held-out group.

    Parameters
    ----------
    spikes : array-like of shape (n_traces, n_frames)
        True spike counts per frame, NaN-padded at the end.
    rates : array-like of shape (n_traces, n_frames)
        Predicted rates.
    fs : float
        Frame rate in Hz.
    neuron : array-like of shape (n_traces,), default=None
        Neuron of each trace. Given, error and bias pool each neuron's traces
        and the median over neurons is reported (CASCADE's protocol); otherwise
        the mean over traces.
    smooth_prediction : bool, default=True
        Smooth the prediction like the truth before error and bias, so that
        discrete and smooth outputs are compared alike.

    Returns
    -------
    scores : dict
        ``correlation`` (mean over traces), ``error`` and ``bias``; NaN where
        no trace or neuron has spikes. Warnings about traces without spikes
        are silenced: those traces are left out of the averages.

    See Also
    --------
    calgan_sklearn.metrics.spikefinder_correlation
    calgan_sklearn.metrics.cascade_error
    calgan_sklearn.metrics.cascade_bias

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.evaluation import score_rates
    >>> spikes = np.zeros((2, 400))
    >>> spikes[:, ::50] = 1
    >>> scores = score_rates(spikes, spikes, fs=100.0)
    >>> round(scores["correlation"], 3), round(scores["error"], 3)
    (1.0, 0.0)
    """
    from .metrics import cascade_bias, cascade_error, spikefinder_correlation

    kw = dict(fs=fs, smooth_prediction=smooth_prediction)
    if neuron is not None:
        kw.update(groups=neuron, average=False)
    with warnings.catch_warnings():
        # traces (neurons) without spikes are NaN in error/bias and left out
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        corr = spikefinder_correlation(spikes, rates, fs=fs)
        err, bias = cascade_error(spikes, rates, **kw), cascade_bias(spikes, rates, **kw)
        if neuron is not None:
            err, bias = np.nanmedian(err), np.nanmedian(bias)
    return {"correlation": float(corr), "error": float(err), "bias": float(bias)}


class GroupFolds(BaseCrossValidator):
    """Predefined folds of groups: each fold holds out its groups together.

    Fold ``k`` tests on the traces of the groups in ``folds[k]`` and trains on
    every other group, except those in ``train_exclude`` (never trained on,
    e.g. a dataset whose neurons are also in another one). Groups in no fold
    are always trained on, so ``GroupFolds([["a"], ["b"]])`` is
    leave-one-group-out restricted to ``a`` and ``b``.

    Parameters
    ----------
    folds : list of list of str
        Group labels held out by each fold, in order.
    train_exclude : collection of str, default=()
        Groups never trained on.

    See Also
    --------
    sklearn.model_selection.LeaveOneGroupOut
    sklearn.model_selection.PredefinedSplit

    Examples
    --------
    >>> from calgan_sklearn.evaluation import GroupFolds
    >>> groups = ["a", "a", "b", "c", "d"]
    >>> cv = GroupFolds([["a", "d"], ["b"]], train_exclude=["d"])
    >>> [(train.tolist(), test.tolist()) for train, test in cv.split(groups, groups=groups)]
    [([2, 3], [0, 1, 4]), ([0, 1, 3], [2])]
    """

    def __init__(self, folds, train_exclude=()):
        self.folds = folds
        self.train_exclude = train_exclude

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of folds."""
        return len(self.folds)

    def split(self, X, y=None, groups=None):
        """Train and test indices of each fold.

        Parameters
        ----------
        X : array-like of shape (n_traces, ...)
            Only its length is used.
        y : ignored
        groups : array-like of shape (n_traces,)
            Group label of each trace.

        Yields
        ------
        train, test : ndarray of int
        """
        if groups is None:
            raise ValueError("GroupFolds needs groups= (one label per trace).")
        groups = np.asarray(groups).astype(str)
        if len(groups) != len(X):
            raise ValueError(f"groups has {len(groups)} labels but there are {len(X)} traces.")
        present = set(groups)
        excluded = np.isin(groups, [str(g) for g in self.train_exclude])
        for k, fold in enumerate(self.folds):
            fold = [str(g) for g in fold]
            missing = [g for g in fold if g not in present]
            if missing:
                raise ValueError(
                    f"fold {k + 1} holds out {missing}, which the data does not contain; "
                    f"its groups are {sorted(present)}."
                )
            test = np.isin(groups, fold)
            yield np.flatnonzero(~test & ~excluded), np.flatnonzero(test)


def cross_evaluate(
    estimators,
    X,
    y,
    *,
    groups,
    fs,
    cv=None,
    params=None,
    test_data=None,
    neurons=None,
    per_neuron=False,
    smooth_prediction=True,
    warm_up=False,
    progress=True,
    on_fold=None,
    return_estimators=False,
    prefit=None,
):
    """Fit on all but the held-out groups, then score and time each held-out group.

    For every fold of ``cv`` and every estimator, ``cross_validate`` fits a
    clone on the training traces (``fs`` set where the estimator has that
    parameter); the fitted estimator then predicts each group of the fold's
    test traces on its own (timed, ``frames_per_s`` counts input frames) and
    :func:`score_rates` scores it.

    Parameters
    ----------
    estimators : dict of str to estimator
        Unfitted trace-level estimators (``predict`` returns rates with the
        input's shape) by display name.
    X : array-like of shape (n_traces, n_frames)
        Calcium traces at ``fs``, NaN-padded at the end.
    y : array-like of shape (n_traces, n_frames)
        True spike counts per frame.
    groups : array-like of shape (n_traces,)
        Group of each trace, usually a loader Bunch's ``dataset``.
    fs : float
        Frame rate of ``X`` in Hz.
    cv : cross-validation splitter or iterable of (train, test), default=None
        ``None`` is :class:`~sklearn.model_selection.LeaveOneGroupOut`; see
        also :class:`GroupFolds`. Splits need not cover every trace: a fixed
        split is ``[(train_idx, test_idx)]``.
    params : dict of str to dict, default=None
        Fit parameters by estimator name, e.g.
        ``{"deep": {"sample_weight": w}}``; per-trace arrays are cut to each
        fold's training traces, as ``cross_validate`` does.
    test_data : callable, default=None
        ``test_data(group)`` returns a Bunch (``calcium``, ``spikes``, ``fs``,
        optional ``neuron`` and ``units``) on which a held-out group is scored
        instead of its traces in ``X``: for example the recording at its native
        frame rate while ``X`` holds it resampled to the training rate. For the
        prediction the fitted estimator's ``fs`` is set to the Bunch's and, if
        the estimator has a ``units`` parameter and the Bunch per-trace
        ``units``, to those units; both are restored afterwards.
    neurons : array-like of shape (n_traces,), default=None
        Neuron of each trace of ``X``, for ``per_neuron``.
    per_neuron : bool, default=False
        Pool each neuron's traces for CASCADE error and bias and report the
        median over neurons (labels from ``neurons``, or from ``test_data``'s
        ``neuron``); otherwise the mean over traces.
    smooth_prediction : bool, default=True
        Passed to :func:`score_rates`.
    warm_up : bool, default=False
        Predict one trace before the timed prediction, so one-off set-up
        (e.g. TensorFlow graph tracing) is not counted as inference time.
    progress : bool, default=True
        Show a tqdm progress bar over (fold, method) fits.
    on_fold : callable, default=None
        Called with each fold's rows (a DataFrame) as soon as they are
        scored, e.g. to print them during a long run.
    return_estimators : bool, default=False
        Also return the fitted estimators, ``{name: [one per fold]}``.
    prefit : dict of str to list of estimators, default=None
        Already fitted estimators, ``{name: [one per fold of cv]}`` (as
        ``return_estimators`` gives them, or loaded from disk): they are scored
        without fitting (``fit_time_s`` is NaN), e.g. to re-score saved models
        after changing a prediction parameter. Each name must be in
        ``estimators``, whose entry is then unused.

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`COLUMNS`: ``fold`` (from 0), held-out ``dataset``
        (group), ``method``, ``fs``, ``n_traces``, ``n_frames``,
        ``correlation``, ``error``, ``bias``, ``fit_time_s``,
        ``predict_time_s`` and ``frames_per_s``.
    estimators : dict of str to list
        Only with ``return_estimators=True`` (then ``(table, estimators)`` is
        returned): each method's fitted estimator of every fold.

    See Also
    --------
    sklearn.model_selection.cross_validate
    sklearn.model_selection.cross_val_predict

    Examples
    --------
    >>> from calgan_sklearn.baselines import OASIS
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import cross_evaluate
    >>> data = make_calcium(n_neurons=4, duration=20, indicator=["OGB-1", "GCaMP6s"])
    >>> table = cross_evaluate(
    ...     {"OASIS": OASIS()}, data.calcium, data.spikes,
    ...     groups=data.dataset, fs=data.fs, progress=False,
    ... )
    >>> table[["dataset", "method", "n_traces"]].values.tolist()
    [['sim-GCaMP6s', 'OASIS', 2], ['sim-OGB-1', 'OASIS', 2]]
    """
    fs = check_fs(fs)
    _check_estimators(estimators)
    X = check_traces(X, allow_nan_rows=True)
    y = np.asarray(y, dtype=float)
    if y.shape != X.shape:
        raise ValueError(
            f"X has shape {X.shape} but y has {y.shape}; give spikes for every frame."
        )
    groups = _check_labels(groups, len(X), "groups")
    if per_neuron and test_data is None:
        neurons = _check_labels(neurons, len(X), "neurons", "per_neuron=True")
    splits = list(check_cv(LeaveOneGroupOut() if cv is None else cv).split(X, y, groups))
    params = {} if params is None else params
    prefit = {} if prefit is None else prefit
    for what, given in (("params", params), ("prefit", prefit)):
        unknown = sorted(set(given) - set(estimators))
        if unknown:
            raise ValueError(
                f"{what} names {unknown}, which are not in estimators {list(estimators)}."
            )
    for name, models in prefit.items():
        if len(models) != len(splits):
            raise ValueError(
                f"prefit[{name!r}] holds {len(models)} estimators but cv has "
                f"{len(splits)} folds; give one fitted estimator per fold."
            )
    fitted = {name: [] for name in estimators}
    tables = []
    bar = _progress(len(splits) * len(estimators), progress)
    try:
        for fold, (train, test) in enumerate(splits):
            held_out = pd.unique(groups[test])
            models, fit_s = {}, {}
            for name, est in estimators.items():
                bar.set_postfix_str(f"{name} -> {', '.join(held_out)}")
                if name in prefit:
                    models[name], fit_s[name] = prefit[name][fold], float("nan")
                else:
                    models[name], fit_s[name] = _fit(
                        est, X, y, groups, train, test, fs, params.get(name)
                    )
                fitted[name].append(models[name])
                bar.update()
            rows = []
            for group in held_out:
                idx = test[groups[test] == group]
                view = _test_view(X, y, fs, idx, neurons, test_data, group)
                if per_neuron and view.neuron is None:
                    raise ValueError(
                        f"per_neuron=True needs neuron labels, but test_data({group!r}) "
                        "returned a Bunch without 'neuron'."
                    )
                for name, model in models.items():
                    rates, predict_s = _timed_predict(model, view, warm_up)
                    neuron = view.neuron if per_neuron else None
                    scores = score_rates(
                        view.spikes,
                        rates,
                        view.fs,
                        neuron=neuron,
                        smooth_prediction=smooth_prediction,
                    )
                    rows.append(
                        dict(
                            fold=fold,
                            dataset=str(group),
                            method=name,
                            fs=view.fs,
                            n_traces=len(view.calcium),
                            n_frames=view.n_frames,
                            **scores,
                            fit_time_s=fit_s[name],
                            predict_time_s=predict_s,
                            frames_per_s=view.n_frames / max(predict_s, 1e-9),
                        )
                    )
            tables.append(pd.DataFrame(rows, columns=COLUMNS))
            if on_fold is not None:
                on_fold(tables[-1])
    finally:
        bar.close()
    table = pd.concat(tables, ignore_index=True)
    return (table, fitted) if return_estimators else table


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #
def _check_estimators(estimators):
    if not isinstance(estimators, dict) or not estimators:
        raise ValueError(
            "estimators must be a non-empty dict of name -> estimator, got "
            f"{type(estimators).__name__}."
        )
    for name, est in estimators.items():
        if isinstance(est, type):
            raise ValueError(
                f"estimator {name!r} is the class {est.__name__}; pass an instance, "
                f"e.g. {est.__name__}()."
            )
        missing = [m for m in ("fit", "predict", "get_params") if not hasattr(est, m)]
        if missing:
            raise ValueError(
                f"estimator {name!r} ({type(est).__name__}) lacks {missing}; pass "
                "scikit-learn estimators that follow the trace convention."
            )


def _check_labels(labels, n, name, why="cross_evaluate"):
    if labels is None:
        raise ValueError(f"{why} needs {name}= (one label per trace).")
    labels = np.asarray(labels).astype(str)
    if labels.shape != (n,):
        raise ValueError(
            f"{name} has shape {labels.shape} but there are {n} traces; give one label per trace."
        )
    return labels


# --------------------------------------------------------------------------- #
# One fold
# --------------------------------------------------------------------------- #
def _fit(est, X, y, groups, train, test, fs, fit_params):
    """Clone and fit ``est`` on the training traces with sklearn's cross_validate."""
    est = clone(est)
    if "fs" in est.get_params(deep=False):
        est.set_params(fs=fs)
    result = cross_validate(
        est,
        X,
        y,
        groups=groups,
        cv=[(train, test)],
        params=fit_params,
        # held-out groups are predicted, timed and scored one by one afterwards
        scoring=_no_score,
        return_estimator=True,
        error_score="raise",
    )
    return result["estimator"][0], float(result["fit_time"][0])


def _no_score(estimator, X, y=None):
    return 0.0


def _test_view(X, y, fs, idx, neurons, test_data, group):
    """The held-out traces of one group (trimmed to their longest), with fs and labels."""
    if test_data is None:
        view = Bunch(calcium=X[idx], spikes=y[idx], fs=fs)
        view.neuron = None if neurons is None else neurons[idx]
    else:
        bunch = test_data(group)
        view = Bunch(
            calcium=np.asarray(bunch["calcium"], dtype=float),
            spikes=np.asarray(bunch["spikes"], dtype=float),
            fs=check_fs(bunch["fs"]),
            neuron=bunch.get("neuron"),
            units=bunch.get("units"),
        )
    lengths = trace_lengths(view.calcium)
    width = max(int(lengths.max()), 1) if len(lengths) else 1
    view.calcium, view.spikes = view.calcium[:, :width], view.spikes[:, :width]
    view.n_frames = int(lengths.sum())
    return view


@contextmanager
def _predict_params(model, view):
    """Set ``fs`` (and ``units``) of a fitted estimator to the test data's; restore after."""
    own = model.get_params(deep=False)
    new = {}
    if "fs" in own and not np.isclose(float(own["fs"]), view.fs):
        new["fs"] = view.fs
    units = np.unique(view.get("units") if view.get("units") is not None else [])
    if "units" in own and len(units) == 1:
        new["units"] = str(units[0])
    model.set_params(**new)
    try:
        yield model
    finally:
        model.set_params(**{k: own[k] for k in new})


def _timed_predict(model, view, warm_up):
    with _predict_params(model, view):
        if warm_up:
            model.predict(view.calcium[:1])
        t0 = time.perf_counter()
        rates = model.predict(view.calcium)
        return rates, time.perf_counter() - t0


def _progress(total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="held-out evaluation", unit="fit")
