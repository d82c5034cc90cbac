"""run_benchmark: folds, table, report files, errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from calgan_sklearn.baselines import OASIS, DerivativeDetector, WienerDeconvolution
from calgan_sklearn.benchmark import COLUMNS, default_estimators, run_benchmark
from calgan_sklearn.datasets import make_calcium
from calgan_sklearn.models import SlidingWindowInference


def _tiny():
    return {
        "OASIS": OASIS(),
        "Wiener": WienerDeconvolution(tau_decay=0.5),
        "LogReg (sliding)": SlidingWindowInference(
            LogisticRegression(max_iter=200), window=16, max_windows=1000
        ),
    }


def test_simulated_lodo_writes_csv_and_png(tmp_path):
    table = run_benchmark(estimators=_tiny(), quick=True, out_dir=tmp_path, progress=False)
    assert list(table.columns) == COLUMNS
    assert len(table) == 3 * 3  # three simulated indicators x three methods
    assert set(table["dataset"]) == {"sim-OGB-1", "sim-GCaMP6f", "sim-GCaMP6s"}
    assert table["correlation"].between(-1, 1).all()
    assert (table.groupby("method")["correlation"].mean() > 0.1).all()
    assert (table["fit_time_s"] > 0).all() and (table["frames_per_s"] > 0).all()
    written = pd.read_csv(tmp_path / "benchmark.csv")
    assert list(written.columns) == COLUMNS and len(written) == len(table)
    png = (tmp_path / "benchmark.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_fixed_split_with_bunches_and_fs():
    train = make_calcium(n_neurons=3, duration=20.0, fs=50.0, random_state=0)
    test = make_calcium(n_neurons=2, duration=15.0, fs=50.0, indicator="OGB-1", random_state=1)
    table = run_benchmark(
        train=train,
        test=test,
        estimators={"Derivative": DerivativeDetector(fs=100.0)},
        fs=50.0,
        progress=False,
    )
    assert table[["dataset", "method", "n_traces"]].values.tolist() == [
        ["sim-OGB-1", "Derivative", 2]
    ]
    assert table["correlation"].iloc[0] > 0.1  # fs was passed on (100 Hz would be worse)


def test_deep_defaults_are_built():
    est = default_estimators(quick=True)
    assert {"DeepSpikeInference", "SpikeClassifier (sliding)", "OASIS", "Wiener"} <= set(est)
    assert "OASIS AR(2)" in default_estimators(quick=False)


@pytest.mark.realdata
def test_spikefinder_folder_leave_one_dataset_out(spikefinder_dir):
    table = run_benchmark(
        data=spikefinder_dir, estimators={"Wiener": WienerDeconvolution()}, progress=False
    )
    assert table["dataset"].tolist() == ["4", "5", "6"]
    assert table["n_traces"].tolist() == [6, 9, 9]
    assert (table["correlation"] > 0.15).all()


def test_errors():
    data = make_calcium(n_neurons=2, duration=5.0, random_state=0)
    with pytest.raises(ValueError, match="at least 2 datasets"):
        run_benchmark(data=data, estimators=_tiny(), progress=False)
    with pytest.raises(ValueError, match="give both train and test"):
        run_benchmark(train=data, estimators=_tiny(), progress=False)
    with pytest.raises(ValueError, match="give either data"):
        run_benchmark(data=data, train=data, test=data, progress=False)
    with pytest.raises(ValueError, match="non-empty dict"):
        run_benchmark(estimators=[OASIS()], quick=True, progress=False)
    with pytest.raises(ValueError, match=r"lacks \['fit', 'predict', 'get_params'\]"):
        run_benchmark(estimators={"bad": "oasis"}, quick=True, progress=False)
    with pytest.raises(ValueError, match=r"is the class OASIS; pass an instance"):
        run_benchmark(estimators={"bad": OASIS}, quick=True, progress=False)
    with pytest.raises(ValueError, match="sampled at 100.0 Hz but the benchmark runs at"):
        run_benchmark(train=data, test=data, estimators=_tiny(), fs=30.0, progress=False)
    unlabelled = dict(data, spikes=None)
    with pytest.raises(ValueError, match="has no ground-truth spikes"):
        run_benchmark(train=unlabelled, test=data, estimators=_tiny(), progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        run_benchmark(data="/nonexistent/folder", estimators=_tiny(), progress=False)


def test_nan_padded_traces_are_scored():
    a = make_calcium(n_neurons=2, duration=10.0, indicator="GCaMP6f", random_state=0)
    b = make_calcium(n_neurons=2, duration=10.0, indicator="OGB-1", random_state=1)
    calcium = np.vstack([a.calcium, b.calcium])
    spikes = np.vstack([a.spikes, b.spikes])
    calcium[0, 600:] = spikes[0, 600:] = np.nan
    data = dict(
        calcium=calcium,
        spikes=spikes,
        fs=100.0,
        dataset=np.r_[a.dataset, b.dataset],
        neuron=np.r_[a.neuron, b.neuron],
    )
    table = run_benchmark(data=data, estimators={"OASIS": OASIS()}, progress=False)
    assert table["correlation"].notna().all()
