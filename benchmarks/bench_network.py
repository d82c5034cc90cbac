"""Network forward speed alone: native vs Keras dilated convolutions, float32 vs bfloat16.

Usage::

    python benchmarks/bench_network.py                      # the pretrained model
    python benchmarks/bench_network.py --model pretrained-fast

Times the graph function ``predict`` calls (``inference_function``) of the
packaged network's inference copy, on random input of the batch shapes
``predict`` forms (many short traces in one batch, or one long trace), in four
variants in the same process: dilated convolutions as one native TensorFlow op
each (``NATIVE_DILATIONS = True``, the default) or as Keras's ``Conv1D``
(space-to-batch, convolution, batch-to-space), each in float32 and bfloat16.
Each variant is called once per shape first (one-off costs), then timed over
``--calls`` calls, twice in interleaved rounds; the faster round is printed, in
million network frames per second, with the native / Keras ratios.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPES = [(32, 3200), (8, 13000), (1, 54260), (2, 40000)]


def main(argv=None):
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pretrained", help="'pretrained', 'pretrained-fast'")
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)

    import tensorflow as tf

    from calgan_sklearn.cli import _load_model
    from calgan_sklearn.models import _inference
    from calgan_sklearn.models._base import inference_function

    model = _load_model(args.model)
    variants = {}
    for native in (True, False):
        _inference.NATIVE_DILATIONS = native
        for dtype in ("float32", "bfloat16"):
            model.set_params(inference_dtype=dtype)
            network = model._inference_network(10**9)
            variants[native, dtype] = inference_function(network)
    _inference.NATIVE_DILATIONS = True
    names = [f"{'native' if n else 'keras'} {d}" for n, d in variants]
    print(f"{'batch x frames':>16s} " + " ".join(f"{n:>16s}" for n in names))
    totals = {k: 0.0 for k in variants}
    for shape in SHAPES:
        x = tf.constant(np.random.default_rng(0).normal(size=(*shape, 6)).astype(np.float32))
        best = {}
        for fn in variants.values():
            fn(x)
        for _ in range(2):
            for key, fn in variants.items():
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    fn(x)
                dt = (time.perf_counter() - t0) / args.calls
                best[key] = min(best.get(key, np.inf), dt)
        frames = shape[0] * shape[1]
        for key in variants:
            totals[key] += best[key] / frames
        cells = " ".join(f"{frames / best[k] / 1e6:>16.2f}" for k in variants)
        print(f"{shape[0]:>6d} x {shape[1]:<7d} {cells}", flush=True)
    for dtype in ("float32", "bfloat16"):
        ratio = totals[False, dtype] / totals[True, dtype]
        print(f"{dtype}: native / Keras frames per second {ratio:.2f}x (mean over shapes)")
    ratio = totals[True, "float32"] / totals[True, "bfloat16"]
    print(f"native: bfloat16 / float32 frames per second {ratio:.2f}x")


if __name__ == "__main__":
    main()
