"""Inference speed at native frame rates: deep model (float32, bfloat16) vs OASIS AR(1).

Usage::

    python benchmarks/bench_speed.py                    # the pretrained model
    python benchmarks/bench_speed.py --model pretrained-fast
    python benchmarks/bench_speed.py --model DIR        # a model saved by calgan fit / save
    python benchmarks/bench_speed.py --datasets DS18-R-CaMP-m-CA3,DS31-GCaMP8m-m-V1

For every dataset of ../shared/data at its native frame rate (as
``bench_heldout.py`` scores it), each method predicts the same traces in the
same process, one after the other. Two figures per method, in frames per second
of the native-rate input:

- **first call**: the first ``predict`` of the whole dataset after a warm-up on
  its first trace (what ``bench_heldout.py`` reports: it includes TensorFlow's
  one-off costs for new input shapes);
- **steady**: the median of three more calls on the same traces (what a long
  recording, predicted in many chunks, sees per chunk).

OASIS AR(1) (``OASIS(p=1)``, per-trace parameters) is fitted on the dataset
itself first (its one scale does not change its speed).

With ``--compare-keras``, the deep model is also timed with its dilated
convolutions run by Keras's own ``Conv1D`` (space-to-batch) instead of one
native TensorFlow op each (``NATIVE_DILATIONS = False``), and the ratios are
printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import FOLDS  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402


def _timings(model, X, repeats=3):
    """(first-call seconds, median steady seconds) of ``model.predict(X)``."""
    import numpy as np

    model.predict(X[:1])
    t0 = time.perf_counter()
    model.predict(X)
    first = time.perf_counter() - t0
    steady = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict(X)
        steady.append(time.perf_counter() - t0)
    return first, float(np.median(steady))


def _cell(frames, first, steady, key):
    text = f"{frames / first / 1e3:,.0f}k / {frames / steady / 1e3:,.0f}k"
    return f"{text:>{15 if key == 'OASIS' else 19}s}"


def main(argv=None):
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--model",
        default="pretrained",
        help="saved model folder, 'pretrained' or 'pretrained-fast'",
    )
    parser.add_argument("--datasets", default=None, help="comma-separated names (default: all)")
    parser.add_argument(
        "--compare-keras",
        action="store_true",
        help="also time the deep model with Keras's dilated Conv1D (NATIVE_DILATIONS=False)",
    )
    args = parser.parse_args(argv)
    from calgan_sklearn.baselines import OASIS
    from calgan_sklearn.cli import _load_model
    from calgan_sklearn.models import _inference

    names = [n for fold in FOLDS for n in fold]
    if args.datasets:
        names = args.datasets.split(",")
    deep = _load_model(args.model)  # `calgan infer --model`'s names and folders
    dtypes = ("float32", "bfloat16")
    if args.compare_keras:
        dtypes += ("float32 keras", "bfloat16 keras")
    print(
        f"{'dataset':38s} {'Hz':>5s} {'frames':>8s} {'OASIS':>15s} "
        + " ".join(f"{'deep ' + d:>19s}" for d in dtypes)
    )
    print(
        f"{'':38s} {'':5s} {'':8s} {'first / steady':>15s} "
        + " ".join(f"{'first / steady':>19s}" for _ in dtypes)
    )
    totals = {k: [0.0, 0.0] for k in ("OASIS", *dtypes)}
    n_total = 0
    for name in names:
        data = load_one(args.data, name, None)
        X, fs = data.calcium, float(data.fs)
        frames = int(np.isfinite(X).sum())
        n_total += frames
        cells = []
        oasis = OASIS(p=1, penalty=1, fs=fs).fit(X, data.spikes)
        timings = {"OASIS": _timings(oasis, X)}
        units = np.unique(data.get("units") if data.get("units") is not None else ["dff"])
        for dtype in dtypes:
            _inference.NATIVE_DILATIONS = not dtype.endswith("keras")
            model = deep.set_params(fs=fs, inference_dtype=dtype.split()[0], units=str(units[0]))
            timings[dtype] = _timings(model, X)
        _inference.NATIVE_DILATIONS = True
        for key, (first, steady) in timings.items():
            totals[key][0] += first
            totals[key][1] += steady
            cells.append(_cell(frames, first, steady, key))
        print(f"{name:38s} {fs:5.1f} {frames:8d} " + " ".join(cells), flush=True)
    print("-" * 110)
    cells = [_cell(n_total, a, b, k) for k, (a, b) in totals.items()]
    print(f"{'all frames':38s} {'':5s} {n_total:8d} " + " ".join(cells))
    for dtype in dtypes:
        first = totals["OASIS"][0] / totals[dtype][0]
        steady = totals["OASIS"][1] / totals[dtype][1]
        print(f"deep {dtype} / OASIS frames/s: first call {first:.2f}x, steady {steady:.2f}x")
    for dtype in dtypes[:2] if args.compare_keras else ():
        first = totals[dtype + " keras"][0] / totals[dtype][0]
        steady = totals[dtype + " keras"][1] / totals[dtype][1]
        print(
            f"deep {dtype}, native / Keras dilated convolutions, frames/s: "
            f"first call {first:.2f}x, steady {steady:.2f}x"
        )


if __name__ == "__main__":
    main()
