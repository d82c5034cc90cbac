"""The ``calgan`` command: the common jobs, each a thin call into the public API.

Run ``calgan --help`` for the list of subcommands and ``calgan CMD --help`` for
each one's options.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

log = logging.getLogger("calgan_sklearn")

#: Subcommands that train Keras models: they call :func:`calgan_sklearn.tune_malloc`.
TRAINING_COMMANDS = ("fit", "benchmark", "sample")


def _quiet_tensorflow():
    """Import Keras (and TensorFlow, when it is Keras's backend) with start-up C++ logs muted.

    TensorFlow writes oneDNN/CUDA notices (and the GPU probe's errors) to
    stderr from C++ before Python's logging is set up;
    ``TF_CPP_MIN_LOG_LEVEL`` does not silence them all.
    Called only by the subcommands that train or run a network, after their
    checks of paths and options, so a mistake is reported in a second.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs from C++ too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# -- checks made before any work starts -------------------------------------------
def _check_writable(path):
    """Raise unless ``path`` can be created: its nearest existing parent is a writable folder."""
    parent = Path(path).absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create {path}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot create {path}: the folder {parent} is not writable.")


def _check_output_file(path, *, overwrite, inputs=()):
    """An output file: never one of the inputs; an existing one only with --overwrite."""
    path = Path(path)
    for source in inputs:
        source = Path(source)
        if source.exists() and path.exists() and path.resolve() == source.resolve():
            raise ValueError(
                f"--output {path} is the input file {source}; writing there would destroy "
                "the input. Choose another output file."
            )
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name to write to.")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass --overwrite to replace it or choose another name."
        )
    _check_writable(path)
    return path


def _check_output_dir(path, names, *, overwrite):
    """An output folder: files ``names`` in it are replaced only with --overwrite."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; give a folder to write into.")
    existing = [name for name in names if (path / name).exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{path / existing[0]} already exists; pass --overwrite to replace it or choose "
            "another folder."
        )
    if not path.exists():
        _check_writable(path)
    elif not os.access(path, os.W_OK):
        raise ValueError(f"cannot write into {path}: the folder is not writable.")
    return path


def _check_inputs(paths, flag):
    """Every input path exists: checked before any data is read or model trained."""
    for path in paths or ():
        if not Path(path).exists():
            raise ValueError(f"{flag} {path} does not exist; check the path.")


def _check_estimator_params(estimator):
    """The estimator's own parameter constraints, checked before loading data."""
    try:
        estimator._validate_params()
    except ValueError as exc:
        raise ValueError(f"invalid option: {exc}") from None
    return estimator


# -- subcommands ------------------------------------------------------------------
def cmd_simulate(args):
    from .datasets import make_calcium, write_spikefinder

    out = Path(args.out)
    for i, indicator in enumerate(args.indicator):
        data = make_calcium(
            n_neurons=args.n_neurons,
            duration=args.duration,
            fs=args.fs,
            indicator=indicator,
            noise_level=args.noise_level,
            random_state=None if args.seed is None else args.seed + i,
        )
        number = data.dataset[0] if args.first_dataset is None else args.first_dataset + i
        write_spikefinder(data, out, split=args.split, dataset=number, overwrite=args.overwrite)
        print(
            f"dataset {number} ({indicator}): {data.calcium.shape[0]} traces of "
            f"{args.duration:g} s -> {out / f'{number}.{args.split}.calcium.csv'} (+ spikes)"
        )
    return 0


def cmd_info(args):
    import pandas as pd

    rows = [row for path in args.path for row in _summarise(path, args.split, args.fs)]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    print(
        "noise_level: CASCADE's nu in %/sqrt(s) at the native frame rate (1 excellent, "
        "3-4 decent, >5 poor); meaningful for dF/F data only (SpikeFinder calcium is in "
        "arbitrary units)."
    )
    return 0


def _native_bunches(path, split, fs=None):
    """Each recording at its own frame rate: one Bunch per SpikeFinder folder or .mat file."""
    from .datasets import detect_layout, load_cascade, load_recording, load_spikefinder
    from .datasets._auto import RECORDING_LAYOUTS

    path = Path(path)
    layout = detect_layout(path)
    if layout in RECORDING_LAYOUTS:
        yield load_recording(path, fs=fs)
        return
    if layout == "spikefinder":
        yield load_spikefinder(path if path.is_dir() else path.parent, split=split)
        return
    files = [path] if path.is_file() else sorted(path.rglob("*.mat"))
    for file in files:
        yield load_cascade(file)


def _summarise(path, split, fs=None):
    from .metrics import noise_level
    from .signal import trace_lengths

    per_dataset = {}
    for data in _native_bunches(path, split, fs):
        n = trace_lengths(data.calcium)
        nu = noise_level(data.calcium, fs=data.fs)
        for i, name in enumerate(data.dataset):
            d = per_dataset.setdefault(
                name,
                {
                    "indicator": data.indicator[i],
                    "neurons": set(),
                    "rates": set(),
                    "seconds": 0.0,
                    "nu": [],
                    "traces": 0,
                    "spikes": 0.0,
                    "labelled": True,
                },
            )
            d["traces"] += 1
            d["neurons"].add(data.neuron[i])
            d["rates"].add(round(float(data.fs)))
            d["seconds"] += n[i] / data.fs
            d["nu"].append(nu[i])
            if data.spikes is None:
                d["labelled"] = False
            else:
                d["spikes"] += np.nansum(data.spikes[i])
    for name, d in per_dataset.items():
        rates = sorted(d["rates"])
        yield {
            "dataset": name,
            "indicator": d["indicator"],
            "traces": d["traces"],
            "neurons": len(d["neurons"]),
            "fs_hz": "/".join(str(r) for r in rates),
            "minutes": round(d["seconds"] / 60, 1),
            "noise_level": round(float(np.nanmedian(d["nu"])), 2),
            "spikes": int(round(d["spikes"])) if d["labelled"] else None,
            "rate_hz": round(d["spikes"] / d["seconds"], 2) if d["labelled"] else None,
        }


#: Files ``DeepSpikeInference.save`` writes (``calgan fit`` and ``calgan calibrate``).
_MODEL_FILES = ("estimator.json", "model_.keras")


def cmd_fit(args):
    from ._validation import check_fs
    from .datasets import dataset_weights, load_folder

    _check_inputs(args.data, "--data")
    _check_output_dir(args.out, _MODEL_FILES, overwrite=args.overwrite)
    params = {"fs": check_fs(args.fs, "--fs"), "random_state": args.seed}
    params["verbose"] = int(args.verbose)
    if args.epochs is not None:
        params["epochs"] = args.epochs
    if args.ensemble_size is not None:
        params["ensemble_size"] = args.ensemble_size
    if args.distill_epochs is not None:
        params["distill_epochs"] = args.distill_epochs
    if args.distill_filters is not None:
        params["distill_filters"] = args.distill_filters
    _quiet_tensorflow()
    from .models import DeepSpikeInference

    model = _check_estimator_params(DeepSpikeInference(**params))
    data = load_folder(args.data, fs=args.fs)
    if data.spikes is None:
        raise ValueError(
            f"calgan fit needs labelled data: {', '.join(map(str, args.data))} hold(s) no "
            "spike files (N.train.spikes.csv or CASCADE events)."
        )
    model.fit(
        data.calcium,
        data.spikes,
        sample_weight=dataset_weights(data.calcium, data.dataset),
        units=data.get("units"),  # SpikeFinder CSVs: arbitrary units; CASCADE: dF/F
    )
    model.save(args.out)
    print(
        f"trained on {data.calcium.shape[0]} traces from {len(set(data.dataset))} "
        f"dataset(s), datasets weighted equally; saved to {args.out}"
    )
    return 0


def cmd_calibrate(args):
    from ._validation import check_fs
    from .datasets import load_folder
    from .models._inference import network_rate

    _check_inputs(args.data, "--data")
    if args.model not in _PRETRAINED:
        _check_inputs([args.model], "--model")
    fs = check_fs(args.fs, "--fs")
    factor = network_rate(fs)[0]  # a clear error for a rate the deep model cannot serve
    if not (args.counts or args.timing):
        raise ValueError("--no-counts and --no-timing together leave nothing to calibrate.")
    timing = args.timing and factor > 1
    _check_output_dir(args.out, _MODEL_FILES, overwrite=args.overwrite)
    data = load_folder(args.data, fs=fs)
    if data.spikes is None:
        raise ValueError(
            f"calgan calibrate needs ground truth: {', '.join(map(str, args.data))} hold(s) "
            "no spike files (N.train.spikes.csv or CASCADE events)."
        )
    _quiet_tensorflow()
    model = _load_model(args.model)
    if not hasattr(model, "calibrate_timing"):
        raise ValueError(
            f"--model {args.model} is a {type(model).__name__}; calgan calibrate "
            "calibrates deep models (DeepSpikeInference)."
        )
    model.set_params(fs=fs)
    units = np.unique(data.get("units") if data.get("units") is not None else [])
    if len(units) > 1:
        raise ValueError(
            f"{', '.join(map(str, args.data))} mix traces in {' and '.join(units)}; "
            "calibrate on data in the units of the recordings you will infer."
        )
    if len(units) == 1:
        model.set_params(units=str(units[0]))
    neurons = len(np.unique(data.neuron))
    spikes = float(np.nansum(np.where(np.isnan(data.calcium), np.nan, data.spikes)))
    print(f"calibrating on {neurons} neuron(s), {spikes:g} spikes, at {fs:g} Hz")
    if args.counts:
        model.calibrate_counts(data.calcium, data.spikes)
        print(f"count_scale = {model.count_scale:.3g} (true spikes / predicted)")
    if timing:
        model.calibrate_timing(data.calcium, data.spikes)
        print("spike timing within network frames learned (timing_coef_)")
    elif args.timing:
        print(f"no timing to calibrate at {fs:g} Hz: the network runs on every frame")
    elif "timing_coef_" in model.__dict__:
        made_at = model.__dict__.get("timing_fs_")
        at = f" (made at {made_at:g} Hz)" if made_at is not None else ""
        print(f"--no-timing: the model's earlier timing calibration{at} is kept")
    model.save(args.out)
    print(
        f"saved to {args.out}; use it with: calgan infer --model {args.out} --fs {fs:g} "
        f"--units {model.units}"
    )
    return 0


#: Neurons read and inferred at a time by ``calgan infer``: memory stays bounded.
_INFER_CHUNK = 256


def cmd_infer(args):
    from ._validation import check_fs
    from .datasets import RatesNpyWriter, load_recording, recording_format, write_rates
    from .datasets._writers import RATE_SUFFIXES

    _check_inputs([args.input], "--input")
    kind = recording_format(args.input)
    if kind is None:
        raise ValueError(
            f"--input {args.input}: expected a calcium CSV (SpikeFinder layout), a suite2p "
            "plane folder, CaImAn results (.hdf5), an NWB file (.nwb) or a .npy array."
        )
    suffix = Path(args.output).suffix.lower()
    if suffix not in RATE_SUFFIXES:
        raise ValueError(
            f"--output {args.output}: the suffix chooses the format; use one of "
            f"{', '.join(RATE_SUFFIXES)}."
        )
    if suffix == ".nwb" and kind != "nwb":
        raise ValueError("--output .nwb needs an NWB --input (the rates go into a copy of it).")
    fs = args.fs
    if fs is None and kind == "csv":
        fs = 100.0  # SpikeFinder's rate
    if fs is not None:
        fs = check_fs(fs, "--fs")
    _check_output_file(args.output, overwrite=args.overwrite, inputs=[args.input])
    if args.model not in _PRETRAINED:
        _check_inputs([args.model], "--model")
    options = {"series": args.series} if kind == "nwb" else {}
    if kind in ("csv", "npy") and args.units is not None:
        options["units"] = args.units

    def read(rows):
        return load_recording(args.input, fs=fs, rois=rows, **options)

    # the selection (cells, accepted components, ...) without reading any trace; a
    # CSV is parsed whole whatever the selection, so it is read once, here
    whole = None
    if kind == "csv":
        with warnings.catch_warnings():
            _ignore_read_warnings()
            whole = read(None)
    meta = whole if whole is not None else read([])
    selected = meta.default_rois
    _quiet_tensorflow()
    model = _load_model(args.model)
    model.set_params(fs=meta.fs)
    for name in ("floor_percentile", "count_scale"):  # options of deep models only
        value = getattr(args, name)
        if value is _MODEL_DEFAULT:
            continue
        if name not in model.get_params():
            raise ValueError(
                f"--{name.replace('_', '-')} applies to deep models (DeepSpikeInference); "
                f"{args.model} is a {type(model).__name__}: leave the option out."
            )
        model.set_params(**{name: value})
        if name == "count_scale":  # the user's factor replaces a calibration and its units
            model.__dict__.pop("count_units_", None)
    if hasattr(model, "_resolve_inference_dtype"):
        # decided once for the whole recording, not per chunk of neurons
        total = len(selected) * meta.calcium.shape[1]
        model.set_params(inference_dtype=model._resolve_inference_dtype(total))
    size = max(len(selected), 1) if whole is not None else _INFER_CHUNK
    chunks = [selected[i : i + size] for i in range(0, len(selected), size)]
    stream = suffix == ".npy"  # the other writers need every trace at once
    writer = None
    parts, empty, done = [], [], 0
    from tqdm.auto import tqdm

    # shown on a terminal only (None), never with --no-progress
    bar = tqdm(total=len(selected), unit="neuron", desc="infer", disable=args.no_progress or None)
    # the reads' repeated warnings (the rate given; empty ROIs, reported once below)
    # are ignored for the whole loop, from this thread: the reads run in another
    with warnings.catch_warnings():
        _ignore_read_warnings()
        try:
            chunked = _read_ahead(chunks, read) if whole is None else ((r, whole) for r in chunks)
            for rows, data in chunked:
                units = args.units or str(data.units[0])
                if "units" in model.get_params():
                    model.set_params(units=units)
                rates = np.full(data.calcium.shape, np.nan, dtype=np.float32)
                filled = np.isfinite(data.calcium).any(axis=1)
                empty.extend(data.neuron[~filled])
                if filled.any():
                    rates[filled] = model.predict(data.calcium[filled])
                done += int(filled.sum())
                if stream:
                    if writer is None:
                        shape = (meta.n_rois, data.calcium.shape[1])
                        writer = RatesNpyWriter(args.output, shape, overwrite=args.overwrite)
                    writer.write(data.roi, rates)
                else:
                    parts.append((data, rates))
                bar.update(len(rows))
            if not done:
                raise ValueError(f"{args.input} holds no values in any trace; nothing to infer.")
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            bar.close()
    if empty:
        warnings.warn(
            f"trace(s) {list(empty[:10])} of {args.input} hold no values; their rates are "
            "left empty.",
            UserWarning,
            stacklevel=2,
        )
    if writer is not None:
        writer.close()
    else:
        from sklearn.utils import Bunch

        data = Bunch(**parts[0][0])
        data.neuron = np.concatenate([d.neuron for d, _ in parts])
        data.roi = np.concatenate([d.roi for d, _ in parts])
        rates = np.concatenate([r for _, r in parts])
        write_rates(rates, data, args.output, overwrite=args.overwrite)
    print(f"wrote spike rates for {done} traces to {args.output}")
    return 0


def _ignore_read_warnings():
    warnings.filterwarnings("ignore", "frame rate", UserWarning)
    warnings.filterwarnings("ignore", ".*hold only NaN", UserWarning)


def _read_ahead(chunks, read):
    """``(rows, read(rows))`` for each chunk of ROIs, the next chunk read in a
    thread while the caller infers this one.

    Reading a chunk (e.g. suite2p's neuropil correction and running dF/F
    baseline) then overlaps inference instead of adding to it; at most two
    chunks are in memory. Warning filters for the reads are the caller's to set,
    around the whole loop: ``warnings.catch_warnings`` is not thread-safe.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, "calgan-read") as pool:
        future = pool.submit(read, chunks[0]) if chunks else None
        for k, rows in enumerate(chunks):
            data = future.result()
            if k + 1 < len(chunks):
                future = pool.submit(read, chunks[k + 1])
            yield rows, data


#: ``--model`` names of the packaged models (``load_pretrained(fast=...)``).
_PRETRAINED = {"pretrained": False, "pretrained-fast": True}


def _load_model(spec):
    if spec in _PRETRAINED:
        from .pretrained import load_pretrained

        return load_pretrained(fast=_PRETRAINED[spec])
    from .models import load

    return load(spec)


def cmd_benchmark(args):
    from .benchmark import run_benchmark

    if (args.train is None) != (args.test is None):
        raise ValueError("--train and --test go together: give both, or neither.")
    if args.data and args.train:
        raise ValueError("give either --data (leave-one-dataset-out) or --train/--test.")
    _check_inputs(args.data, "--data")
    _check_inputs(args.train, "--train")
    _check_inputs(args.test, "--test")
    _check_output_dir(args.out, ("benchmark.csv", "benchmark.png"), overwrite=args.overwrite)
    _quiet_tensorflow()
    table = run_benchmark(
        data=args.data or None,
        train=args.train,
        test=args.test,
        fs=args.fs,
        out_dir=args.out,
        random_state=args.seed,
        progress=not args.no_progress,
    )
    print(_format_table(table))
    print(f"\ntable and figure written to {Path(args.out).resolve()}")
    return 0


def _format_table(table):
    return table.to_string(index=False, float_format=lambda v: f"{v:.3f}")


#: Options of ``calgan sample`` that only the rendering of a spike CSV (--spikes) uses.
_TRACE_ONLY = ("crop_seconds", "model", "calcium", "figure")
#: CalciumGAN parameters ``calgan sample`` sets from its own options, not --param.
_OWN_PARAMS = ("fs", "crop_seconds", "epochs", "random_state", "verbose", "callbacks")
#: Files ``CalciumGAN.save`` writes.
_GAN_FILES = ("estimator.json", "generator_.keras", "critic_.keras")


def _parse_params(items):
    """``--param NAME=VALUE`` pairs as a dict; values read as Python literals, else strings."""
    import ast

    from .models import CalciumGAN

    valid = sorted(set(CalciumGAN().get_params()) - set(_OWN_PARAMS))
    params = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE, e.g. --param filters=8.")
        if name not in valid:
            raise ValueError(
                f"--param {name}: not a CalciumGAN parameter set this way; valid names: "
                f"{', '.join(valid)} (fs, epochs, crop_seconds, seed have their own options)."
            )
        try:
            params[name] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            params[name] = text.strip()
    return params


def _check_sample_options(args):
    """Options that go together; checked before any file is read or network built."""
    if args.spikes is None:
        given = [f"--{o.replace('_', '-')}" for o in _TRACE_ONLY if getattr(args, o) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} apply to rendering a spike-train CSV; give --spikes "
                "spikes.csv (and --fs), or leave them out to write synthetic windows."
            )
        return
    if args.model is not None:
        trains = [
            flag
            for flag, value in (
                ("--data", args.data),
                ("--epochs", args.epochs),
                ("--crop-seconds", args.crop_seconds),
                ("--param", args.param),
                ("--save-model", args.save_model),
            )
            if value
        ]
        if trains:
            raise ValueError(
                f"--model reuses a trained CalciumGAN, but {', '.join(trains)} train(s) one; "
                "give either --model or the training options."
            )
    elif args.fs is None:
        raise ValueError(
            "--fs is required with --spikes: the frame rate (Hz) of the spike-train CSV, "
            "at which the GAN is trained and renders (e.g. --fs 30)."
        )
    if args.figure is not None and args.calcium is None:
        raise ValueError(
            "--figure compares the rendering with real calcium of the same spike trains; "
            "give it as --calcium real.csv (the spike CSV's shape)."
        )


#: ``--floor-percentile`` not given: the model keeps its own.
_MODEL_DEFAULT = object()


def _positive_float(text):
    """``--count-scale``: a positive finite number."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number; got {text!r}")
    return value


def _percentile_or_none(text):
    """``--floor-percentile``: a number in [0, 100) or 'none'."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 100:
        raise argparse.ArgumentTypeError(
            f"expected a percentile from 0 to below 100, or 'none'; got {text!r}"
        )
    return value


def cmd_sample(args):
    _check_sample_options(args)
    if args.spikes is not None:
        return _render_spike_csv(args)
    import pandas as pd

    from ._validation import check_fs
    from .datasets import load_folder, make_calcium, make_windows
    from .datasets._csv import _write_csv

    if args.n < 1:
        raise ValueError(f"--n must be at least 1 (windows to write), got {args.n}.")
    if args.window < 8:
        raise ValueError(f"--window must be at least 8 frames, got {args.window}.")
    fs = 100.0 if args.fs is None else check_fs(args.fs, "--fs")
    _check_inputs(args.data, "--data")
    _check_output_file(args.out, overwrite=args.overwrite)
    if args.save_model:
        _check_output_dir(args.save_model, _GAN_FILES, overwrite=args.overwrite)
    params = _parse_params(args.param)
    _quiet_tensorflow()
    from .models import CalciumGAN

    epochs = 20 if args.epochs is None else args.epochs
    gan = CalciumGAN(epochs=epochs, random_state=args.seed, verbose=int(args.verbose), **params)
    _check_estimator_params(gan)
    data = load_folder(args.data, fs=fs) if args.data else make_calcium(random_state=args.seed)
    if data.spikes is None:
        raise ValueError(
            f"calgan sample needs labelled data: {', '.join(map(str, args.data))} hold(s) no "
            "spike files."
        )
    X, y, _ = make_windows(data.calcium, data.spikes, window=args.window, target="center")
    gan.fit(X, y)
    if args.save_model:
        gan.save(args.save_model, metadata=_sample_metadata(args, fs))
    labels = np.tile([0, 1], args.n // 2 + 1)[: args.n]
    samples, labels = gan.sample(args.n, y=labels, random_state=args.seed)
    _write_csv(pd.DataFrame(samples.T), args.out)
    print(
        f"wrote {args.n} synthetic windows ({args.window} frames, columns) to {args.out}; "
        f"labels (spike in centre): {labels.tolist()[:10]}..."
    )
    return 0


def _sample_metadata(args, fs):
    return {
        "command": "calgan sample",
        "data": [str(Path(p).resolve()) for p in args.data] if args.data else "simulated",
        "fs": fs,
    }


def _render_spike_csv(args):
    """``calgan sample --spikes``: render a spike-train CSV into calcium with a trace GAN."""
    from ._validation import check_fs
    from .datasets import read_traces_csv, write_rates_csv

    fs = None if args.fs is None else check_fs(args.fs, "--fs")
    _check_inputs([args.spikes], "--spikes")
    _check_inputs([args.calcium] if args.calcium else [], "--calcium")
    _check_inputs(args.data, "--data")
    if args.model is not None:
        _check_inputs([args.model], "--model")
    inputs = [p for p in (args.spikes, args.calcium) if p]
    _check_output_file(args.out, overwrite=args.overwrite, inputs=inputs)
    if args.figure is not None:
        if Path(args.figure).absolute() == Path(args.out).absolute():
            raise ValueError(f"--figure and --out are both {args.out}; give two file names.")
        _check_output_file(args.figure, overwrite=args.overwrite, inputs=inputs)
        from ._realism import _figure_class

        # matplotlib missing or a format it cannot write: said now, not after training
        try:
            formats = _figure_class()().canvas.get_supported_filetypes()
        except ImportError as exc:
            raise ValueError(f"--figure: {exc}") from None
        suffix = Path(args.figure).suffix.lower().lstrip(".")
        if suffix not in formats:
            raise ValueError(
                f"--figure {args.figure}: the suffix chooses the format; use one of "
                f"{', '.join('.' + f for f in sorted(formats))}."
            )
    if args.save_model:
        _check_output_dir(args.save_model, _GAN_FILES, overwrite=args.overwrite)
    params = _parse_params(args.param)
    spikes, columns = read_traces_csv(args.spikes, kind="spikes")
    real = None
    if args.calcium is not None:
        real, real_columns = read_traces_csv(args.calcium, kind="calcium")
        if real.shape != spikes.shape:
            raise ValueError(
                f"--calcium {args.calcium} has {real.shape[0]} column(s) of {real.shape[1]} "
                f"frames but --spikes {args.spikes} has {spikes.shape[0]} of "
                f"{spikes.shape[1]}; give the calcium recorded with these spike trains, "
                "column by column at the same frame rate."
            )
    _quiet_tensorflow()
    if args.model is not None:
        gan, fs = _load_trace_gan(args.model, fs)
    else:
        gan = _train_trace_gan(args, fs, params)
    rendered, _ = gan.sample(y=spikes, like=real, random_state=args.seed)
    write_rates_csv(rendered, columns, args.out, overwrite=args.overwrite)
    print(
        f"rendered {len(columns)} spike train(s) of {args.spikes} at {fs:g} Hz into "
        f"calcium -> {args.out}"
        + (" (baseline and noise of --calcium)" if real is not None else "")
    )
    if args.figure is not None:
        from .evaluation import plot_realism

        fig = plot_realism(real, rendered, spikes, fs, labels=("real", "rendered"))
        fig.savefig(args.figure, dpi=100)
        print(f"figure (real vs rendered, STA, spectra) -> {args.figure}")
    return 0


def _train_trace_gan(args, fs, params):
    """A whole-trace CalciumGAN trained on --data (or simulated data) at ``fs``."""
    from .datasets import load_folder, make_calcium
    from .models import CalciumGAN

    options = {"epochs": 30 if args.epochs is None else args.epochs, **params}
    if args.crop_seconds is not None:
        options["crop_seconds"] = args.crop_seconds
    gan = CalciumGAN(fs=fs, random_state=args.seed, verbose=int(args.verbose), **options)
    _check_estimator_params(gan)
    if args.data:
        data = load_folder(args.data, fs=fs)
    else:
        data = make_calcium(n_neurons=10, duration=300.0, fs=fs, random_state=args.seed)
    if data.spikes is None:
        raise ValueError(
            f"calgan sample needs labelled data: {', '.join(map(str, args.data))} hold(s) no "
            "spike files (N.train.spikes.csv or CASCADE events)."
        )
    gan.fit(data.calcium, data.spikes)
    if args.save_model:
        gan.save(args.save_model, metadata=_sample_metadata(args, fs))
    return gan


def _load_trace_gan(path, fs):
    """A saved whole-trace CalciumGAN and its frame rate (``fs``, if given, must match)."""
    from .models import CalciumGAN, load

    gan = load(path)
    if not isinstance(gan, CalciumGAN) or getattr(gan, "conditioning_", None) != "trains":
        what = type(gan).__name__
        if isinstance(gan, CalciumGAN):
            what = "CalciumGAN of windows"
        raise ValueError(
            f"--model {path} holds a {what}, not a whole-trace CalciumGAN; save one with "
            "calgan sample --spikes ... --save-model DIR."
        )
    if fs is not None and abs(fs - gan.fs) > 1e-6 * gan.fs:
        raise ValueError(
            f"--model {path} renders at {gan.fs:g} Hz but --fs is {fs:g}; the spike CSV must "
            f"be at the model's frame rate (resample it to {gan.fs:g} Hz, or train a model at "
            f"{fs:g} Hz)."
        )
    return gan, float(gan.fs)


# -- parser -----------------------------------------------------------------------
def build_parser():
    parser = argparse.ArgumentParser(
        prog="calgan",
        description="Deep generative and discriminative models of calcium imaging data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("simulate", help="write simulated recordings as SpikeFinder CSVs")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--indicator",
        nargs="+",
        default=["GCaMP6s"],
        help="one dataset per indicator (default: GCaMP6s)",
    )
    p.add_argument("--n-neurons", type=int, default=10)
    p.add_argument("--duration", type=float, default=300.0, help="seconds per neuron")
    p.add_argument("--fs", type=float, default=100.0, help="frame rate in Hz")
    p.add_argument(
        "--noise-level", type=float, default=2.0, help="CASCADE noise level nu in %%/sqrt(s)"
    )
    p.add_argument(
        "--first-dataset",
        type=int,
        default=None,
        help="number the datasets from here (default: label them sim-<indicator>)",
    )
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "info", help="summarise data: SpikeFinder, CASCADE, suite2p, CaImAn, NWB or .npy"
    )
    p.add_argument("path", nargs="+", help="data folder(s) or file(s)")
    p.add_argument("--split", default="train")
    p.add_argument("--fs", type=float, default=None, help="frame rate of .npy input (Hz)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("fit", help="train the deep spike-inference model")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        help="SpikeFinder or CASCADE folder (repeat for several)",
    )
    p.add_argument("--out", required=True, help="directory to save the model in")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's default")
    p.add_argument(
        "--ensemble-size",
        type=int,
        default=None,
        help="networks trained side by side (default: the model's default, 3; 1 trains 3x faster)",
    )
    p.add_argument(
        "--distill-epochs",
        type=int,
        default=None,
        help="epochs distilling the ensemble into the one network predict runs "
        "(default: the model's default, 10; 0 keeps the ensemble)",
    )
    p.add_argument(
        "--distill-filters",
        type=int,
        default=None,
        help="channels of the distilled network (default: the model's, 32; 16 predicts "
        "about 1.6x faster)",
    )
    p.add_argument("--fs", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace a model saved in --out")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("infer", help="infer spike rates for a recording")
    p.add_argument(
        "--model",
        default="pretrained",
        help="directory written by calgan fit, 'pretrained', or 'pretrained-fast' (the same "
        "training distilled into a narrower network: about 1.6x faster, slightly less accurate)",
    )
    p.add_argument(
        "--input",
        required=True,
        help="calcium CSV (SpikeFinder layout), suite2p plane folder, CaImAn .hdf5, .nwb "
        "or .npy (neurons x frames)",
    )
    p.add_argument(
        "--output",
        required=True,
        help="file to write; its suffix picks the format: .csv (SpikeFinder layout), .npy "
        "(the input's shape, NaN where no trace) or .nwb (a copy of an NWB input with a new "
        "series)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (neurons/s)")
    p.add_argument(
        "--fs",
        type=float,
        default=None,
        help="frame rate of the input (Hz); default: the file's own (suite2p, CaImAn, NWB), "
        "100 for a CSV; required for .npy",
    )
    p.add_argument(
        "--units",
        choices=("arbitrary", "dff"),
        default=None,
        help="units of the input: 'dff' for dF/F traces (their noise level in dF/F "
        "helps the deep model count spikes), 'arbitrary' for any other scale; default: "
        "what the file holds (suite2p: dF/F; CaImAn: dF/F if saved, NWB: dF/F for DfOverF), "
        "'arbitrary' for CSV and .npy",
    )
    p.add_argument("--series", default=None, help="NWB: name of the RoiResponseSeries to read")
    p.add_argument(
        "--floor-percentile",
        type=_percentile_or_none,
        default=_MODEL_DEFAULT,
        metavar="P|none",
        help="percentile of each trace's rates subtracted as its silent floor (deep "
        "models; default: the model's own, 20 for the pretrained one); 'none' keeps the "
        "raw rates, e.g. for neurons that never pause",
    )
    p.add_argument(
        "--count-scale",
        type=_positive_float,
        default=_MODEL_DEFAULT,
        metavar="C",
        help="multiply the deep model's rates by C (default: the model's own count_scale, "
        "1 for the pretrained one), e.g. a factor found with "
        "DeepSpikeInference.calibrate_counts on neurons of the same preparation with "
        "ground truth",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser(
        "calibrate",
        help="fit a deep model's spike counts and timing to neurons of your preparation "
        "with ground truth",
    )
    p.add_argument(
        "--data",
        action="append",
        required=True,
        help="SpikeFinder or CASCADE folder with the neurons' ground truth (repeat for several)",
    )
    p.add_argument("--out", required=True, help="directory to save the calibrated model in")
    p.add_argument(
        "--model",
        default="pretrained",
        help="directory written by calgan fit, 'pretrained' or 'pretrained-fast'",
    )
    p.add_argument(
        "--fs",
        type=float,
        required=True,
        help="frame rate (Hz) of the recordings the model will infer; the ground truth "
        "is resampled to it",
    )
    p.add_argument(
        "--no-counts",
        dest="counts",
        action="store_false",
        help="keep the model's count_scale (default: set it so the rates sum to the true counts)",
    )
    p.add_argument(
        "--no-timing",
        dest="timing",
        action="store_false",
        help="keep the rise rule (default above 20 Hz: learn where spikes lie within "
        "network frames)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a model saved in --out")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("benchmark", help="compare deep models with classical baselines")
    p.add_argument("--data", action="append", help="leave-one-dataset-out over these folders")
    p.add_argument("--train", action="append", help="training folder(s) for a fixed split")
    p.add_argument("--test", action="append", help="test folder(s) for a fixed split")
    p.add_argument("--out", default="calgan_out", help="folder for the CSV table and PNG figure")
    p.add_argument("--fs", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace an existing table/figure")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser(
        "sample",
        help="train a CalciumGAN; render a spike-train CSV into calcium (--spikes) or "
        "write synthetic windows",
    )
    p.add_argument(
        "--data",
        action="append",
        help="labelled data folder(s) the GAN learns from (repeat for several); default: "
        "simulated",
    )
    p.add_argument(
        "--out",
        required=True,
        help="CSV to write: with --spikes, calcium in the spike CSV's layout; else one "
        "column per window",
    )
    p.add_argument(
        "--spikes",
        default=None,
        help="spike counts per frame to render (SpikeFinder layout: one column per neuron, "
        "NaN padding); trains a whole-trace GAN",
    )
    p.add_argument(
        "--fs",
        type=float,
        default=None,
        help="frame rate (Hz) of --spikes, at which --data is loaded and the GAN trained "
        "(required with --spikes unless --model); without --spikes: the rate --data is "
        "loaded at (default 100)",
    )
    p.add_argument(
        "--calcium",
        default=None,
        help="with --spikes: the real calcium of these spike trains (same layout); each "
        "rendering takes its column's baseline and noise level, and --figure compares them",
    )
    p.add_argument(
        "--figure",
        default=None,
        help="with --spikes and --calcium: PNG (or PDF, SVG) of real vs rendered traces, "
        "spike-triggered averages and spectra",
    )
    p.add_argument(
        "--model",
        default=None,
        help="with --spikes: folder of a whole-trace GAN saved by --save-model, used "
        "instead of training",
    )
    p.add_argument("--save-model", default=None, help="folder to save the trained GAN in")
    p.add_argument(
        "--epochs", type=int, default=None, help="default: 30 with --spikes, 20 for windows"
    )
    p.add_argument(
        "--crop-seconds",
        type=float,
        default=None,
        help="with --spikes: seconds of the critic's crops (default: the GAN's, 8)",
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="any other CalciumGAN parameter, e.g. --param filters=8 --param batch_size=32",
    )
    p.add_argument("--n", type=int, default=20, help="number of windows (without --spikes)")
    p.add_argument("--window", type=int, default=64, help="window length (without --spikes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing --out/--figure/--save-model"
    )
    p.set_defaults(func=cmd_sample)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None):
    """Entry point of the ``calgan`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    warnings.showwarning = _show_warning
    if args.command in TRAINING_COMMANDS:
        from ._malloc import tune_malloc

        if tune_malloc():
            log.info("glibc malloc tuned for training (CALGAN_MALLOC=system leaves it alone)")
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        _print_error(args.command, exc)
        return 2
    except KeyboardInterrupt:
        print(f"calgan {args.command}: interrupted; no output was completed.", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback; -v shows where it came from
        log.info("traceback of the error below", exc_info=True)
        _print_error(args.command, exc, unexpected=True)
        return 1


def _print_error(command, exc, *, unexpected=False):
    """One line on stderr: what went wrong (and, for a bug, how to see more)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if unexpected:
        message = (
            f"{type(exc).__name__}: {message} (unexpected; run 'calgan -v {command} ...' "
            "for the traceback and report it)"
        )
    print(f"calgan {command}: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
