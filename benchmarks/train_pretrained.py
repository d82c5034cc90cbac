"""Train the pretrained DeepSpikeInference on all of ../shared/data and save it.

Usage::

    python benchmarks/train_pretrained.py            # writes calgan_sklearn/pretrained/
    python benchmarks/train_pretrained.py --out /tmp/model --seed 1
    python benchmarks/train_pretrained.py --fast     # calgan_sklearn/pretrained/fast/

Training data: SpikeFinder training datasets 4 and 5 (100 Hz) and the 20 CASCADE
datasets in ../shared/data/cascade, resampled to 100 Hz (one trace per trial,
trials longer than 5 min cut into 5-min pieces). SpikeFinder 6 is left out: its
neurons are DS17's (see ``TRAIN_EXCLUDE``).
Prints the training time and the peak resident memory of this process; both are
also saved with the model as its metadata (``est.save(out, metadata={"training":
...})``), which ``calgan_sklearn.pretrained.pretrained_info()`` returns.
The script first calls :func:`calgan_sklearn.tune_malloc` (glibc keeps freed memory
for the next training step); ``--system-malloc`` leaves glibc's defaults.
"""

from __future__ import annotations

import argparse
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
#: Channels of the fast variant's distilled network (the default model's: 32).
FAST_FILTERS = 16


#: Datasets left out of training because their neurons are in another dataset:
#: SpikeFinder 6 is the GCaMP5k recordings of CASCADE's DS17 (same 9 neurons,
#: same spike counts), which is kept (dF/F at its native rate).
TRAIN_EXCLUDE = {"spikefinder-6": "DS17-GCaMP5k-m-V1"}

#: Longer traces are cut into pieces of at most this many seconds for training,
#: so the NaN-padded arrays stay small (a few 54-min traces would otherwise pad
#: every trace to 54 min: 8 GB instead of 0.5 GB).
MAX_TRACE_S = 300.0


def dataset_names(data=DEFAULT_DATA):
    """All 23 dataset names of ../shared/data: SpikeFinder 4-6 and every CASCADE folder."""
    data = Path(data)
    names = [f"spikefinder-{n}" for n in ("4", "5", "6")]
    return names + sorted(p.name for p in (data / "cascade").iterdir() if p.is_dir())


def load_one(data, name, fs):
    """One dataset at ``fs`` Hz (``None``: the median native rate of its files)."""
    from calgan_sklearn.datasets import load_cascade, load_spikefinder

    data = Path(data)
    with warnings.catch_warnings():
        # the loaders warn about repaired quirks and spikes outside recordings
        warnings.simplefilter("ignore", UserWarning)
        if name.startswith("spikefinder-"):
            sf = load_spikefinder(data / "spikefinder", datasets=[name.split("-", 1)[1]])
            sf.dataset = np.array([name] * len(sf.dataset))
            if fs is not None and not np.isclose(fs, sf.fs):
                from calgan_sklearn.signal import resample_traces

                sf.calcium = resample_traces(sf.calcium, sf.fs, fs, kind="calcium")
                sf.spikes = resample_traces(sf.spikes, sf.fs, fs, kind="counts")
                sf.spikes[np.isnan(sf.calcium)] = np.nan
                sf.fs = float(fs)
            return sf
        folder = data / "cascade" / name
        if fs is None:
            fs = float(np.median(load_cascade(folder, fs=100.0).fs_native))
        return load_cascade(folder, fs=fs)


def split_long_traces(bunch, max_frames):
    """Cut traces longer than ``max_frames`` into consecutive pieces (labels copied)."""
    from calgan_sklearn.signal import pad_traces, trace_lengths

    lengths = trace_lengths(bunch.calcium)
    if lengths.max() <= max_frames:
        return bunch
    rows, labels = [], []
    for i, n in enumerate(lengths):
        for start in range(0, max(int(n), 1), max_frames):
            stop = min(start + max_frames, int(n))
            rows.append((bunch.calcium[i, start:stop], bunch.spikes[i, start:stop]))
            labels.append(i)
    labels = np.array(labels)
    out = type(bunch)(**bunch)
    out.calcium = pad_traces([r[0] for r in rows])
    out.spikes = pad_traces([r[1] for r in rows])
    for key in ("dataset", "neuron", "indicator", "trial", "filename", "fs_native", "units"):
        if key in bunch and np.ndim(bunch[key]) == 1 and len(bunch[key]) == len(lengths):
            out[key] = np.asarray(bunch[key])[labels]
    return out


def load_all_data(data=DEFAULT_DATA, fs=FS, names=None, max_trace_s=MAX_TRACE_S, max_s=None):
    """Datasets of ../shared/data at ``fs`` as one Bunch, long traces cut for training.

    ``names`` defaults to every dataset except :data:`TRAIN_EXCLUDE`; ``max_s``
    keeps only each dataset's first pieces up to that many seconds.
    """
    from calgan_sklearn.datasets._auto import concat_bunches

    if names is None:
        names = [n for n in dataset_names(data) if n not in TRAIN_EXCLUDE]
    max_frames = int(max_trace_s * fs) if max_trace_s else None
    parts = []
    for name in names:
        part = load_one(data, name, fs)
        part = split_long_traces(part, max_frames) if max_frames else part
        if max_s is not None:
            from calgan_sklearn.signal import trace_lengths

            seconds = np.cumsum(trace_lengths(part.calcium)) / part.fs
            keep = np.flatnonzero(seconds - seconds[0] <= max_s)
            for key, value in list(part.items()):
                if isinstance(value, np.ndarray) and len(value) == len(seconds):
                    part[key] = value[keep]
        parts.append(part)
    return concat_bunches(parts)


def describe(bunch):
    """Datasets, neurons, traces and hours of recording in ``bunch``."""
    from calgan_sklearn.signal import trace_lengths

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


def add_malloc_option(parser):
    """``--system-malloc``: leave glibc's malloc alone instead of calling tune_malloc."""
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc's malloc at its defaults (see calgan_sklearn.tune_malloc)",
    )


def apply_malloc(args):
    """Call :func:`calgan_sklearn.tune_malloc` unless ``--system-malloc``; print and
    return what the process allocates with."""
    from calgan_sklearn import tune_malloc

    malloc = "glibc, tuned" if not args.system_malloc and tune_malloc() else "unchanged"
    print(f"malloc: {malloc} (LD_PRELOAD={os.environ.get('LD_PRELOAD', '')!r})")
    return malloc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: the estimator's")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument(
        "--fast",
        action="store_true",
        help=f"the fast variant: distilled into {FAST_FILTERS} channels, saved in OUT/fast",
    )
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    out = args.out / "fast" if args.fast else args.out

    from calgan_sklearn.datasets import dataset_weights
    from calgan_sklearn.models._inference import DeepSpikeInference

    malloc = apply_malloc(args)
    t0 = time.perf_counter()
    data = load_all_data(args.data)
    t_load = time.perf_counter() - t0
    info = describe(data)
    print(
        f"data: {info['neurons']} neurons, {info['traces']} traces, {info['hours']} h "
        f"at {info['fs']:g} Hz (loaded in {t_load:.1f} s)"
    )

    est = DeepSpikeInference(fs=data.fs, random_state=args.seed, verbose=args.verbose)
    if args.fast:
        est.set_params(distill_filters=FAST_FILTERS)
    if args.epochs is not None:
        est.set_params(epochs=args.epochs)
    t0 = time.perf_counter()
    # every dataset gets the same share of training crops
    est.fit(
        data.calcium,
        data.spikes,
        sample_weight=dataset_weights(data.calcium, data.dataset),
        units=data.units,  # SpikeFinder arbitrary, CASCADE dF/F
    )
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
    training = {
        **info,
        "seed": args.seed,
        "sample_weight": "1 / frames of the trace's dataset (datasets balanced)",
        "epochs": est.epochs,
        "training_seconds": round(t_fit, 1),
        "peak_rss_mb": round(rss, 1),
        "malloc": malloc,
        "load_average_after_training": round(load[0], 2),
        "train_correlation": round(train_score, 4),
        "command": "python benchmarks/train_pretrained.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "versions": {
            "tensorflow": __import__("tensorflow").__version__,
            "keras": __import__("keras").__version__,
        },
    }
    est.save(out, metadata={"training": training})  # pretrained_info() reads it
    size = sum(f.stat().st_size for f in out.iterdir() if f.suffix in (".json", ".keras"))
    print(f"saved to {out} ({size / 1024:.0f} KB)")
    return est


if __name__ == "__main__":
    main()
