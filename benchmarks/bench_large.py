"""Large recordings: wall time and peak memory of inference on a generated suite2p folder.

Generates its own input: a suite2p-like plane folder (``F.npy``, ``Fneu.npy``,
``iscell.npy``, ``ops.npy``) of ``--neurons`` traces of ``--minutes`` at 30 Hz in
float32 (AR(1) calcium of Poisson spikes plus noise, written chunk by chunk),
then runs in separate processes, each measured for wall time and peak resident
memory (``os.wait4``'s rusage of that process alone):

- ``pretrained`` and ``pretrained-fast``: ``calgan infer`` with each packaged
  model on every trace (issue 12's target: 10,000 neurons x 1 hour in at most
  5 min and 2 GB);
- ``oasis``: OASIS AR(1) on the same file, for the ratio;
- with ``--long``, ``deep-long``: one trace of ``--long-frames`` frames (target:
  10 M frames in at most 1 GB).

Rates are written to ``.npy`` memory maps next to the input. Usage::

    python benchmarks/bench_large.py                       # 10,000 x 60 min (the target)
    python benchmarks/bench_large.py --neurons 200 --minutes 5 --long --long-frames 500000

The ``pretrained`` cases are the command line a user runs, ``calgan infer --model
pretrained --input PLANE --output rates.npy`` (suite2p reader: neuropil
correction and dF/F, 256 neurons at a time, rates streamed into the ``.npy``);
OASIS runs on ``F.npy`` memory-mapped through its estimator, as the command has
no OASIS model; the long trace goes through the estimator with ``out=``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

FS = 30.0

DEEP = """
import sys, numpy as np
from calgan_sklearn import load_pretrained
F = np.load(sys.argv[1], mmap_mode="r")
out = np.lib.format.open_memmap(sys.argv[2], mode="w+", dtype=np.float32, shape=F.shape)
model = load_pretrained(fs={fs}).set_params(units="arbitrary")
model.predict(F, out=out)
out.flush()
"""

CLI = """
import sys
from calgan_sklearn.cli import main
args = ["--model", sys.argv[3], "--input", sys.argv[1], "--output", sys.argv[2]]
sys.exit(main(["infer", *args, "--no-progress"]))
"""

OASIS = """
import sys, numpy as np
from calgan_sklearn.baselines import OASIS
F = np.load(sys.argv[1], mmap_mode="r")
out = np.lib.format.open_memmap(sys.argv[2], mode="w+", dtype=np.float32, shape=F.shape)
model = OASIS(p=1, fs={fs}).fit(F[:10])
model.predict(F, out=out)
out.flush()
"""


def simulate(n_traces, n_frames, rng, rate=0.5, tau=1.0):
    """Float32 AR(1) calcium of Poisson spikes (``rate`` Hz), with noise and an offset."""
    spikes = rng.poisson(rate / FS, size=(n_traces, n_frames)).astype(np.float32)
    g = np.exp(-1.0 / (tau * FS))
    calcium = lfilter([1.0], [1.0, -g], spikes, axis=1).astype(np.float32)
    calcium += rng.normal(0.0, 0.2, size=calcium.shape).astype(np.float32)
    return calcium * 50.0 + 500.0


def write_suite2p(plane, n_neurons, n_frames, seed=0, block_frames=5_000_000):
    """A suite2p plane folder of float32 traces, written in blocks of neurons."""
    plane.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (n_neurons, n_frames)
    F = np.lib.format.open_memmap(plane / "F.npy", mode="w+", dtype=np.float32, shape=shape)
    Fneu = np.lib.format.open_memmap(plane / "Fneu.npy", mode="w+", dtype=np.float32, shape=shape)
    step = max(block_frames // n_frames, 1)
    for start in range(0, n_neurons, step):
        block = simulate(min(step, n_neurons - start), n_frames, rng)
        neuropil = rng.normal(300.0, 5.0, size=block.shape).astype(np.float32)
        F[start : start + len(block)] = block + 0.7 * neuropil
        Fneu[start : start + len(block)] = neuropil
    F.flush()
    Fneu.flush()
    del F, Fneu
    iscell = np.column_stack([np.ones(n_neurons), np.full(n_neurons, 0.9)])
    np.save(plane / "iscell.npy", iscell)
    ops = {"fs": FS, "nframes": n_frames, "Ly": 512, "Lx": 512, "tau": 1.0}
    np.save(plane / "ops.npy", ops, allow_pickle=True)


#: Run first in the measured process: at exit it writes its own peak resident
#: memory (``VmHWM``, Linux) to the file named by ``BENCH_PEAK_FILE``.
PEAK = """
import atexit, os
def _write_peak():
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as f:
        f.write(kib)
if os.path.exists("/proc/self/status"):
    atexit.register(_write_peak)
"""


def measure(code, *args):
    """Run ``code`` in a fresh Python; return (wall seconds, peak RSS in MiB).

    The peak is the process's own high-water mark (``VmHWM``). ``ru_maxrss``
    from ``wait4`` is not used where that exists: Linux carries the
    high-water mark of the forked image over ``exec``, so the child would
    report this process's peak from writing the input files (8.3 GiB for
    10,000 x 1 h) whatever it used itself.
    """
    peak_file = Path(tempfile.mkstemp(prefix="bench_peak_")[1])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", BENCH_PEAK_FILE=str(peak_file))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", PEAK + code, *map(str, args)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        own = peak_file.read_text().strip()
    finally:
        peak_file.unlink()
    if proc.returncode:
        raise RuntimeError(f"the measured process failed with exit code {proc.returncode}")
    if own:
        return wall, int(own) / 1024
    # ru_maxrss is in KiB on Linux (bytes on macOS)
    scale = 1 if sys.platform == "darwin" else 1024
    return wall, usage.ru_maxrss * scale / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temporary one)")
    parser.add_argument("--long", action="store_true", help="also one long trace")
    parser.add_argument("--long-frames", type=int, default=10_000_000)
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        help="calgan infer --model value(s) to time (default: pretrained and pretrained-fast)",
    )
    parser.add_argument("--skip-oasis", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    root = args.out or Path(tempfile.mkdtemp(prefix="bench_large_"))
    n_frames = int(round(args.minutes * 60 * FS))
    rows = []
    try:
        plane = root / "suite2p" / "plane0"
        t0 = time.perf_counter()
        write_suite2p(plane, args.neurons, n_frames)
        print(f"generated {args.neurons} x {n_frames} frames in {time.perf_counter() - t0:.0f} s")
        for model in args.model or ["pretrained", "pretrained-fast"]:
            wall, rss = measure(CLI, plane, root / "rates_deep.npy", model)
            rows.append((model, args.neurons, n_frames, wall, rss))
            (root / "rates_deep.npy").unlink()
        if not args.skip_oasis:
            wall, rss = measure(OASIS.format(fs=FS), plane / "F.npy", root / "rates_oasis.npy")
            rows.append(("oasis", args.neurons, n_frames, wall, rss))
        if args.long:
            long_dir = root / "long"
            write_suite2p(long_dir, 1, args.long_frames, seed=1)
            wall, rss = measure(DEEP.format(fs=FS), long_dir / "F.npy", root / "rates_long.npy")
            rows.append(("deep-long", 1, args.long_frames, wall, rss))
    finally:
        if not args.keep:
            shutil.rmtree(root / "suite2p", ignore_errors=True)
            shutil.rmtree(root / "long", ignore_errors=True)
            for f in root.glob("rates_*.npy"):
                f.unlink()
            if args.out is None:
                shutil.rmtree(root, ignore_errors=True)

    print(
        f"\n{'case':<16} {'neurons':>8} {'frames':>11} {'wall s':>8} {'peak MiB':>9} "
        f"{'neurons/s':>10}"
    )
    for name, n, t, wall, rss in rows:
        print(f"{name:<16} {n:>8} {t:>11} {wall:>8.1f} {rss:>9.0f} {n / wall:>10.1f}")
    walls = {name: wall for name, *_, wall, _ in rows}
    if "oasis" in walls:
        for name, wall in walls.items():
            if name.startswith("pretrained"):
                print(f"{name} / OASIS wall time: {wall / walls['oasis']:.2f}x")
    print("targets (10,000 x 60 min): deep <= 300 s and <= 2048 MiB; 10 M-frame trace <= 1024 MiB")


if __name__ == "__main__":
    main()
