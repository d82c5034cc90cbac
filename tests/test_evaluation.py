"""cross_evaluate: folds, per-group scores, timing, native-rate test data; GroupFolds."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

from calgan_sklearn.baselines import OASIS, WienerDeconvolution
from calgan_sklearn.datasets import make_calcium
from calgan_sklearn.evaluation import COLUMNS, GroupFolds, cross_evaluate, score_rates
from calgan_sklearn.metrics import cascade_bias, cascade_error, spikefinder_correlation
from calgan_sklearn.signal import trace_lengths

INDICATORS = ["OGB-1", "GCaMP6f", "GCaMP6s"]


@pytest.fixture(scope="module")
def data():
    return make_calcium(n_neurons=6, duration=20.0, indicator=INDICATORS, random_state=0)


class _Recorder(BaseEstimator):
    """Predicts a constant rate; remembers what ``fit`` and ``predict`` received."""

    def __init__(self, fs=100.0):
        self.fs = fs

    def fit(self, X, y, sample_weight=None):
        self.n_fit_traces_ = len(X)
        self.sample_weight_ = sample_weight
        self.fit_fs_ = self.fs
        return self

    def predict(self, X):
        self.predict_fs_ = self.fs
        return np.where(np.isnan(X), np.nan, 0.01)


def _evaluate(data, estimators, **kw):
    kw.setdefault("progress", False)
    return cross_evaluate(
        estimators, data.calcium, data.spikes, groups=data.dataset, fs=data.fs, **kw
    )


def test_one_row_per_held_out_group_and_method(data):
    table = _evaluate(data, {"OASIS": OASIS(), "Wiener": WienerDeconvolution()})
    assert list(table.columns) == COLUMNS
    groups = sorted(f"sim-{ind}" for ind in INDICATORS)
    assert table["dataset"].tolist() == [g for g in groups for _ in range(2)]
    assert table["method"].tolist() == ["OASIS", "Wiener"] * 3
    assert table["fold"].tolist() == [0, 0, 1, 1, 2, 2]
    assert (table["n_traces"] == 2).all()
    assert (table["fs"] == 100.0).all()


def test_scores_are_the_metrics_of_cross_val_predict_output(data):
    table = _evaluate(data, {"OASIS": OASIS()})
    rates = cross_val_predict(
        OASIS(), data.calcium, data.spikes, groups=data.dataset, cv=LeaveOneGroupOut()
    )
    for row in table.itertuples():
        m = data.dataset == row.dataset
        y, r = data.spikes[m], rates[m]
        assert row.correlation == pytest.approx(spikefinder_correlation(y, r, fs=100.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # traces without spikes
            err = cascade_error(y, r, 100.0, smooth_prediction=True)
            bias = cascade_bias(y, r, 100.0, smooth_prediction=True)
        assert row.error == pytest.approx(err)
        assert row.bias == pytest.approx(bias)


def test_timings_and_frame_counts(data):
    table = _evaluate(data, {"OASIS": OASIS()}, warm_up=True)
    assert (table["fit_time_s"] > 0).all() and (table["predict_time_s"] > 0).all()
    np.testing.assert_allclose(table["frames_per_s"], table["n_frames"] / table["predict_time_s"])
    for row in table.itertuples():
        m = data.dataset == row.dataset
        assert row.n_frames == trace_lengths(data.calcium[m]).sum()


def test_group_folds_hold_out_together_and_never_train_excluded(data):
    groups = sorted(set(data.dataset))
    cv = GroupFolds([[groups[0], groups[1]], [groups[2]]], train_exclude=[groups[1]])
    weights = np.arange(len(data.calcium), dtype=float)
    folds = []
    table, fitted = _evaluate(
        data,
        {"rec": _Recorder()},
        cv=cv,
        params={"rec": {"sample_weight": weights}},
        on_fold=folds.append,
        return_estimators=True,
    )
    assert table["dataset"].tolist() == groups  # every group held out exactly once
    assert [f["dataset"].tolist() for f in folds] == [groups[:2], groups[2:]]
    first, second = fitted["rec"]
    assert first.n_fit_traces_ == 2  # only groups[2]: groups[1] is never trained on
    assert second.n_fit_traces_ == 2  # groups[0] only
    train = np.isin(data.dataset, groups[2])
    np.testing.assert_array_equal(first.sample_weight_, weights[train])


def test_native_rate_test_data_sets_and_restores_fs(data):
    native = {
        g: make_calcium(n_neurons=3, duration=20.0, fs=50.0, indicator=g[4:], random_state=1)
        for g in set(data.dataset)
    }
    table, fitted = _evaluate(
        data,
        {"OASIS": OASIS(), "rec": _Recorder()},
        test_data=native.__getitem__,
        per_neuron=True,
        return_estimators=True,
    )
    assert (table["fs"] == 50.0).all() and (table["n_traces"] == 3).all()
    rec = fitted["rec"][0]
    assert rec.fit_fs_ == 100.0 and rec.predict_fs_ == 50.0 and rec.fs == 100.0
    row = table[table.method == "OASIS"].iloc[0]
    held = native[row.dataset]
    oasis = OASIS().fit(
        data.calcium[data.dataset != row.dataset], data.spikes[data.dataset != row.dataset]
    )
    rates = oasis.set_params(fs=50.0).predict(held.calcium)
    expected = score_rates(held.spikes, rates, 50.0, neuron=held.neuron)
    assert row.correlation == pytest.approx(expected["correlation"])
    assert row.error == pytest.approx(expected["error"])


def test_score_rates_pools_neurons():
    rng = np.random.default_rng(0)
    spikes = rng.poisson(0.05, size=(4, 500)).astype(float)
    rates = spikes * np.array([[1.0], [3.0], [1.0], [1.0]])
    per_trace = score_rates(spikes, rates, 100.0)
    assert per_trace["bias"] == pytest.approx(0.5)  # mean over traces of 0, 2, 0, 0
    assert per_trace["correlation"] == pytest.approx(1.0)
    neuron = [0, 0, 1, 1]
    pooled = score_rates(spikes, rates, 100.0, neuron=neuron)
    by_neuron = cascade_bias(
        spikes, rates, 100.0, smooth_prediction=True, groups=neuron, average=False
    )
    assert by_neuron[1] == pytest.approx(0.0) and by_neuron[0] > 0.5
    assert pooled["bias"] == pytest.approx(np.median(by_neuron))  # median over neurons


def test_errors(data):
    with pytest.raises(ValueError, match="non-empty dict"):
        _evaluate(data, [OASIS()])
    with pytest.raises(ValueError, match=r"params names \['wiener'\]"):
        _evaluate(data, {"OASIS": OASIS()}, params={"wiener": {}})
    with pytest.raises(ValueError, match="per_neuron=True needs neurons="):
        _evaluate(data, {"OASIS": OASIS()}, per_neuron=True)
    with pytest.raises(ValueError, match="fold 1 holds out \\['nope'\\]"):
        _evaluate(data, {"OASIS": OASIS()}, cv=GroupFolds([["nope"]]))
    unlabelled = {"calcium": data.calcium[:2], "spikes": data.spikes[:2], "fs": 100.0}
    with pytest.raises(ValueError, match="returned a Bunch without 'neuron'"):
        _evaluate(data, {"OASIS": OASIS()}, test_data=lambda g: unlabelled, per_neuron=True)
    with pytest.raises(ValueError, match="groups has shape"):
        cross_evaluate({"OASIS": OASIS()}, data.calcium, data.spikes, groups=["a"], fs=100.0)


def test_prefit_estimators_are_scored_without_refitting(data):
    table, fitted = _evaluate(data, {"OASIS": OASIS()}, return_estimators=True)
    again = _evaluate(data, {"OASIS": OASIS()}, prefit=fitted)
    cols = ["dataset", "correlation", "error", "bias"]
    np.testing.assert_array_equal(again[cols].values, table[cols].values)
    assert again["fit_time_s"].isna().all() and table["fit_time_s"].notna().all()
    # a prefit model is used as it is: not cloned, not fitted again
    recorders = [_Recorder().fit(data.calcium[:1], data.spikes[:1]) for _ in range(3)]
    _evaluate(data, {"rec": _Recorder()}, prefit={"rec": recorders})
    assert [r.n_fit_traces_ for r in recorders] == [1, 1, 1]
    assert all(r.predict_fs_ == data.fs for r in recorders)
    with pytest.raises(ValueError, match="one fitted estimator per fold"):
        _evaluate(data, {"OASIS": OASIS()}, prefit={"OASIS": fitted["OASIS"][:1]})
    with pytest.raises(ValueError, match="not in estimators"):
        _evaluate(data, {"OASIS": OASIS()}, prefit={"deep": fitted["OASIS"]})
