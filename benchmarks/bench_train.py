"""Training and inference speed of DeepSpikeInference on this machine: CPU or GPU, float32
or mixed precision.

Usage::

    python benchmarks/bench_train.py                          # ../shared/data, 20 min each
    python benchmarks/bench_train.py --write-cache train.npz  # save the training set
    python benchmarks/bench_train.py --cache train.npz        # train from the saved set
    KERAS_BACKEND=jax python benchmarks/bench_train.py --cache train.npz   # e.g. a GPU box
    python benchmarks/bench_train.py --max-s 0 --hold-out DS09-GCaMP6f-m-V1 DS23-OGB1-m-PV-V1 \
        --epochs 10 --write-cache fold4.npz   # fold 4 of bench_heldout.py, scored

The training set is the first ``--max-s`` seconds (default 1200) of every dataset of
../shared/data at 100 Hz, datasets balanced, as for the pretrained model. Each
configuration (``--precision float32`` and ``mixed``; mixed precision is float16
with loss scaling on a GPU, bfloat16 on a CPU) trains the default model for
``--epochs`` epochs per ensemble member plus the distillation, in the same process,
then predicts the whole training set twice (after a one-trace warm-up; the second
call has seen every input shape). Printed:
backend, device, fit seconds, seconds per epoch, training crop frames per second,
inference frames per second, peak resident memory, and for mixed precision the
correlation of its rates with float32's and the ratio of the two speeds. The cache
lets a machine without ../shared/data (a lent GPU machine) run the same set.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import _parse_params  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_all_data, peak_rss_mb  # noqa: E402


def _bunch_arrays(b, prefix):
    """A Bunch's arrays for the cache, under ``prefix`` (float32 calcium, float16 counts)."""
    out = {
        f"{prefix}calcium": b.calcium.astype(np.float32),
        f"{prefix}spikes": b.spikes.astype(np.float16),  # counts and NaN padding, exact
        f"{prefix}dataset": np.asarray(b.dataset, dtype=str),
        f"{prefix}units": np.asarray(b.units, dtype=str),
        f"{prefix}fs": b.fs,
    }
    if b.get("neuron") is not None:
        out[f"{prefix}neuron"] = np.asarray(b.neuron, dtype=str)
    return out


def _bunch_of(z, prefix):
    from sklearn.utils import Bunch

    return Bunch(
        calcium=z[f"{prefix}calcium"].astype(np.float64),
        spikes=z[f"{prefix}spikes"].astype(np.float64),
        dataset=z[f"{prefix}dataset"],
        units=z[f"{prefix}units"],
        fs=float(z[f"{prefix}fs"]),
        neuron=z.get(f"{prefix}neuron", None),
    )


def load_training_set(args):
    """``(train, tests)``: the training Bunch and the held-out datasets at native rates.

    From ``--cache``, or from ``--data``: every dataset but ``--hold-out`` (and
    SpikeFinder 6, as in bench_heldout.py), the first ``--max-s`` seconds each.
    """
    if args.cache is not None:
        z = np.load(args.cache, allow_pickle=False)
        names = [str(n) for n in z["held_out"]] if "held_out" in z else []
        return _bunch_of(z, ""), {n: _bunch_of(z, f"test{i}_") for i, n in enumerate(names)}
    from train_pretrained import TRAIN_EXCLUDE, dataset_names, load_one

    held = list(args.hold_out)
    names = [n for n in dataset_names(args.data) if n not in held and n not in TRAIN_EXCLUDE]
    data = load_all_data(args.data, 100.0, names=names, max_s=args.max_s or None)
    tests = {n: load_one(args.data, n, None) for n in held}
    if args.write_cache is not None:
        arrays = _bunch_arrays(data, "")
        for i, n in enumerate(held):
            arrays.update(_bunch_arrays(tests[n], f"test{i}_"))
        np.savez_compressed(args.write_cache, held_out=np.asarray(held, dtype=str), **arrays)
        print(f"wrote {args.write_cache} ({args.write_cache.stat().st_size / 2**20:.1f} MiB)")
    return data, tests


def device_name():
    import keras

    from calgan_sklearn.models._base import gpu_available

    backend = keras.backend.backend()
    if not gpu_available():
        return backend, f"CPU ({os.cpu_count()} cores)"
    if backend == "jax":
        import jax

        return backend, f"GPU {jax.devices()[0].device_kind}"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0])
        return backend, f"GPU {details.get('device_name', gpus[0].name)}"
    return backend, "GPU"


def run(data, precision, params, seed, tests=None):
    from calgan_sklearn.datasets import dataset_weights
    from calgan_sklearn.models._inference import DeepSpikeInference
    from calgan_sklearn.signal import trace_lengths

    est = DeepSpikeInference(
        fs=data.fs,
        random_state=seed,
        mixed_precision=precision == "mixed",
        inference_dtype="float32",
        **params,
    )
    t0 = time.perf_counter()
    est.fit(
        data.calcium,
        data.spikes,
        sample_weight=dataset_weights(data.calcium, data.dataset),
        units=data.units,
    )
    fit_s = time.perf_counter() - t0
    distill = est.distill_epochs if est.ensemble_size > 1 else 0
    epochs = est.epochs + distill  # the ensemble's members train side by side
    crop_frames = est.steps_per_epoch_ * est.batch_size * est.crop_length  # network frames
    est.predict(data.calcium[:1])  # warm-up: graph tracing is not inference
    frames = int(trace_lengths(data.calcium).sum())
    t0 = time.perf_counter()
    rates = est.predict(data.calcium)
    predict_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    est.predict(data.calcium)  # again: every input shape seen (traced / compiled)
    steady_s = time.perf_counter() - t0
    scores = {}
    for name, test in (tests or {}).items():
        from calgan_sklearn.evaluation import score_rates

        units = np.unique(test.units)
        est.set_params(fs=test.fs, units=str(units[0]) if len(units) == 1 else est.units)
        scores[name] = score_rates(
            test.spikes, est.predict(test.calcium), test.fs, neuron=test.neuron
        )
        est.set_params(fs=data.fs, units="dff")
    return dict(
        scores=scores,
        precision=precision,
        fit_s=fit_s,
        s_per_epoch=fit_s / epochs,
        crop_frames_per_s=crop_frames * epochs / fit_s,
        predict_fps=frames / predict_s,
        steady_fps=frames / steady_s,
        rates=rates,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--max-s", type=float, default=1200.0, help="seconds per dataset (0: all)")
    parser.add_argument(
        "--hold-out",
        nargs="*",
        default=[],
        metavar="NAME",
        help="datasets left out of training and scored at their native rate (a fold of "
        "bench_heldout.py; cached with --write-cache)",
    )
    parser.add_argument("--cache", type=Path, default=None, help="read the set from this .npz")
    parser.add_argument("--write-cache", type=Path, default=None, help="save the set here")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", default="float32,mixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)

    data, tests = load_training_set(args)
    from calgan_sklearn.signal import trace_lengths

    frames = int(trace_lengths(data.calcium).sum())
    backend, device = device_name()
    params = {"epochs": args.epochs, **_parse_params(args.param)}
    print(
        f"backend {backend}, device {device}; {len(data.calcium)} traces, "
        f"{frames / data.fs / 3600:.2f} h at {data.fs:g} Hz from "
        f"{len(np.unique(data.dataset))} datasets; parameters {params}"
    )
    print(
        f"{'precision':9s} {'fit s':>7s} {'s/epoch':>8s} {'train crop fr/s':>15s} "
        f"{'predict fr/s':>12s} {'again fr/s':>11s} {'vs float32':>10s}"
    )
    results = []
    for precision in args.precision.split(","):
        r = run(data, precision, params, args.seed, tests)
        line = (
            f"{precision:9s} {r['fit_s']:7.1f} {r['s_per_epoch']:8.1f} "
            f"{r['crop_frames_per_s']:15,.0f} {r['predict_fps']:12,.0f} "
            f"{r['steady_fps']:11,.0f}"
        )
        if results:
            base = results[0]
            ok = np.isfinite(base["rates"]) & np.isfinite(r["rates"])
            corr = np.corrcoef(base["rates"][ok], r["rates"][ok])[0, 1]
            line += (
                f" train {base['fit_s'] / r['fit_s']:.2f}x, predict "
                f"{r['predict_fps'] / base['predict_fps']:.2f}x, rates r={corr:.3f} "
                "with the float32-trained model's"
            )
        print(line, flush=True)
        for name, sc in r["scores"].items():
            print(
                f"    held out {name}: correlation {sc['correlation']:.3f}, error "
                f"{sc['error']:.2f}, bias {sc['bias']:+.2f}",
                flush=True,
            )
        results.append(r)
    print(f"peak resident memory {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
