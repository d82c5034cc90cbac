"""``predict`` throughput of the packaged models on generated traces, on any backend.

Usage::

    python benchmarks/bench_predict.py                          # 1,000 x 108,000 frames
    KERAS_BACKEND=jax python benchmarks/bench_predict.py        # e.g. on a GPU machine

Needs neither ../shared/data nor files: ``bench_large.simulate``'s AR(1) calcium
of Poisson spikes (0.5 Hz, tau 1 s) plus noise, ``--neurons`` traces of
``--frames`` float32 frames at 30 Hz, in memory. Each packaged model
(``load_pretrained(fast=False)`` and ``fast=True``) predicts 300 of them first
(one-off costs), then all of them, timed; printed: seconds, neurons per second,
and the time 10,000 neurons would take at that rate (an extrapolation, not a
measurement).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_large import FS, simulate  # noqa: E402


def main(argv=None):
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=108_000)
    args = parser.parse_args(argv)

    import keras

    from calgan_sklearn import load_pretrained
    from calgan_sklearn.models._base import gpu_available

    n, T = args.neurons, args.frames
    X = simulate(n, T, np.random.default_rng(0))
    print(f"backend {keras.backend.backend()}, GPU {gpu_available()}, {n} x {T} frames")
    for fast in (False, True):
        model = load_pretrained(fs=FS, fast=fast).set_params(units="arbitrary")
        model.predict(X[:300])
        t0 = time.perf_counter()
        rates = model.predict(X)
        dt = time.perf_counter() - t0
        name = "pretrained-fast" if fast else "pretrained"
        print(
            f"{name:16s} {dt:7.1f} s  {n / dt:6.0f} neurons/s  10,000 neurons: "
            f"{10_000 / (n / dt):.0f} s (extrapolated)  rates finite: {np.isfinite(rates).all()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
