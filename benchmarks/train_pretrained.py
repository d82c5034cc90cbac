"""Train the pretrained DeepSpikeInference on all of ../shared/data and save it.

Usage::

    python benchmarks/train_pretrained.py            # writes calgan_sklearn/pretrained/
    python benchmarks/train_pretrained.py --out /tmp/model --seed 1

Training data: SpikeFinder training datasets 4, 5, 6 (100 Hz) and the six CASCADE
datasets in ../shared/data/cascade, resampled to 100 Hz (one trace per trial).
Prints the training time and the peak resident memory of this process; both are
also written into ``estimator.json`` under ``"training"``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("CALGAN_SHARED_DATA", REPO.parent / "shared" / "data"))
DEFAULT_OUT = REPO / "calgan_sklearn" / "pretrained"
FS = 100.0


def load_all_data(data=DEFAULT_DATA, fs=FS):
    """SpikeFinder 4, 5, 6 and every CASCADE dataset at ``fs``, as one Bunch."""
    from calgan_sklearn.datasets import load_cascade, load_spikefinder
    from calgan_sklearn.datasets._auto import concat_bunches

    data = Path(data)
    with warnings.catch_warnings():
        # the loaders warn about dropped NaN frames / spikes outside recordings
        warnings.simplefilter("ignore", UserWarning)
        parts = [load_spikefinder(data / "spikefinder", datasets=["4", "5", "6"])]
        parts += [load_cascade(d, fs=fs) for d in sorted((data / "cascade").iterdir())]
    for p in parts[:1]:
        p.dataset = np.array([f"spikefinder-{d}" for d in p.dataset])
    return concat_bunches(parts)


def describe(bunch):
    """Datasets, neurons, traces and hours of recording in ``bunch``."""
    from calgan_sklearn._validation import trace_lengths

    lengths = trace_lengths(bunch.calcium)
    per = {}
    for name in np.unique(bunch.dataset):
        m = bunch.dataset == name
        per[str(name)] = {
            "neurons": int(len(np.unique(bunch.neuron[m]))),
            "traces": int(m.sum()),
            "hours": round(float(lengths[m].sum() / bunch.fs / 3600), 3),
            "spikes": int(np.nansum(bunch.spikes[m])),
        }
    return {
        "datasets": per,
        "neurons": int(sum(v["neurons"] for v in per.values())),
        "traces": int(len(lengths)),
        "hours": round(float(lengths.sum() / bunch.fs / 3600), 3),
        "fs": float(bunch.fs),
    }


def peak_rss_mb():
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the estimator's")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    from calgan_sklearn.datasets import dataset_weights
    from calgan_sklearn.models._inference import DeepSpikeInference

    t0 = time.perf_counter()
    data = load_all_data(args.data)
    t_load = time.perf_counter() - t0
    info = describe(data)
    print(
        f"data: {info['neurons']} neurons, {info['traces']} traces, {info['hours']} h "
        f"at {info['fs']:g} Hz (loaded in {t_load:.1f} s)"
    )

    est = DeepSpikeInference(fs=data.fs, random_state=args.seed, verbose=args.verbose)
    if args.epochs is not None:
        est.set_params(epochs=args.epochs)
    t0 = time.perf_counter()
    # every dataset gets the same share of training crops
    est.fit(data.calcium, data.spikes, sample_weight=dataset_weights(data.calcium, data.dataset))
    t_fit = time.perf_counter() - t0
    rss = peak_rss_mb()
    load = os.getloadavg()
    print(
        f"training time: {t_fit:.1f} s ({t_fit / 60:.2f} min) on {os.cpu_count()} CPU cores; "
        f"load average after training {load[0]:.2f}"
    )
    print(f"peak resident memory: {rss:.0f} MB")
    train_score = est.score(data.calcium, data.spikes)
    print(f"correlation on the training data (not a test score): {train_score:.3f}")

    est.set_params(verbose=0)
    est.save(args.out)
    meta_file = args.out / "estimator.json"
    meta = json.loads(meta_file.read_text())
    meta["training"] = {
        **info,
        "seed": args.seed,
        "sample_weight": "1 / frames of the trace's dataset (datasets balanced)",
        "epochs": est.epochs,
        "training_seconds": round(t_fit, 1),
        "peak_rss_mb": round(rss, 1),
        "load_average_after_training": round(load[0], 2),
        "train_correlation": round(train_score, 4),
        "command": "python benchmarks/train_pretrained.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "versions": {
            "tensorflow": __import__("tensorflow").__version__,
            "keras": __import__("keras").__version__,
        },
    }
    meta_file.write_text(json.dumps(meta, indent=1))
    size = sum(f.stat().st_size for f in args.out.iterdir() if f.suffix in (".json", ".keras"))
    print(f"saved to {args.out} ({size / 1024:.0f} KB)")
    return est


if __name__ == "__main__":
    main()
