"""Re-spread saved fold models' group totals with other timing-placement settings.

Usage::

    python benchmarks/bench_heldout.py --save-models runs/m      # train and keep the 8 fold models
    python benchmarks/placement_sweep.py runs/m                  # the default sweep
    python benchmarks/placement_sweep.py runs/m --variants '[{"sigma": 1.5}, {"even": 1}]'

Above 20 Hz, :class:`~calgan_sklearn.models._inference.DeepSpikeInference` runs its
network on groups of frames and spreads each group's expected spikes over the
frames where the calcium rises (:func:`calgan_sklearn.signal.spread_groups_by_rise`).
This script predicts every held-out dataset with a group size above one frame at
its native rate (as ``bench_heldout.py`` does), captures the network's group
totals, spreads them again with each variant and prints the SpikeFinder
correlation per dataset and the mean over datasets. A variant is a dict of
``spread_groups_by_rise`` arguments, or one of these:

- ``{"sigma_factor": c}``: ``sigma = c *`` group size;
- ``{"sigma_ms": t}``: ``sigma`` of ``t`` ms (at least half a frame);
- ``{"even": 1}``: the even spread (``refine_timing=False``);
- ``{"oracle": 1}``: each group's total placed on its true spikes (a reference,
  not a method);
- ``{"psd": r}``: ``sigma`` chosen per trace from its spectrum
  (:func:`psd_sigma`: smoothing that halves the frequencies where the trace's
  power falls to ``r`` times its noise floor);
- ``{"oasis": f, "p": 2, "smooth": s}``: frame weights from OASIS AR(``p``)
  deconvolution of the full-rate trace, smoothed by ``s`` frames (or
  ``"smooth_factor": c`` times the group size), plus ``f`` times their mean;
  ``"times_rule": 1`` multiplies them by the rule's weights;
- ``{"phases": k}``: not a placement but test-time augmentation: the mean of the
  default rates of the traces and of the traces started ``j * factor / k``
  frames later (``j = 1 .. k-1``), so the network's groups fall at ``k``
  phases (the first frames keep the default rates).

The ``default`` column reproduces ``bench_heldout.py``'s deep correlations for
the same models. ``--divisor d`` scores every dataset resampled to its native
rate divided by ``d`` instead (those still above 20 Hz), as a recording made at
that rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import FOLDS  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402

VARIANTS = [
    {"even": 1},
    {"oracle": 1},
    {"sigma": 1.5},
    {"sigma": 5},
    {"sigma_factor": 0.5},
    {"threshold": 1},
    {"threshold": 3},
    {"floor": 0.25},
    {"floor": 0.5},
    {"floor": 2},
    {"sigma": 2, "threshold": 1, "floor": 0.5},
]


def psd_sigma(calcium, ratio):
    """A per-trace ``sigma`` (frames, 1-8) from the trace's power spectrum.

    The highest frequency where the Welch power exceeds ``ratio`` times the
    noise floor (the median power over the upper half of frequencies) is taken
    as where signal gives way to noise; ``sigma`` is the Gaussian's whose
    response there is 1/2 (``0.187 / f`` for ``f`` in cycles per frame).
    """
    from scipy.signal import welch

    x = np.asarray(calcium, dtype=np.float64)
    f, p = welch(x - x.mean(), nperseg=min(256, len(x)))
    above = np.flatnonzero(p > ratio * np.median(p[len(p) // 2 :]))
    fc = f[above.max()] if len(above) else f[1]
    return float(np.clip(0.187 / max(fc, 1e-3), 1.0, 8.0))


def spread_by_weight(totals, weight, factor):
    """``spread_groups_by_rise``'s interpolation with a given per-frame weight."""
    from scipy.ndimage import uniform_filter1d

    from calgan_sklearn.signal import _group_density

    n = len(weight)
    w = np.asarray(weight, dtype=np.float64) + 1e-12
    w = w / uniform_filter1d(w, 2 * factor, mode="nearest")
    w *= _group_density(totals, factor, n, 0, n)
    return w * (float(np.sum(totals)) / max(float(w.sum()), 1e-300))


def spread(variant, totals, calcium, factor, spikes, oasis=None):
    """Spread ``totals`` (one per group of ``factor`` frames) over ``calcium``'s frames."""
    from scipy.ndimage import gaussian_filter1d

    from calgan_sklearn.signal import spread_groups, spread_groups_by_rise

    n = len(calcium)
    if "oasis" in variant:
        w = np.asarray(oasis[:n], dtype=np.float64)
        smooth = variant.get("smooth", 0) or variant.get("smooth_factor", 0) * factor
        if smooth:
            w = gaussian_filter1d(w, smooth)
        w = w + variant["oasis"] * max(float(w.mean()), 1e-12)
        if variant.get("times_rule"):
            rule = spread_groups_by_rise(np.ones(len(totals)), calcium, factor)
            w = w * rule
        return spread_by_weight(totals, w, factor)
    if variant.get("even"):
        return spread_groups(totals, factor, n)
    if variant.get("oracle"):
        even = spread_groups(totals, factor, n).astype(np.float64)
        true = np.nan_to_num(spikes[:n]).astype(np.float64)
        group = np.arange(n) // factor
        per_group = np.bincount(group, true)[group]
        share = np.where(per_group > 0, true / np.maximum(per_group, 1e-12) * factor, 1.0)
        return even * share
    kwargs = dict(variant)
    if "psd" in kwargs:
        kwargs["sigma"] = psd_sigma(calcium, kwargs.pop("psd"))
    if "sigma_factor" in kwargs:
        kwargs["sigma"] = max(1.0, kwargs.pop("sigma_factor") * factor)
    if "sigma_ms" in kwargs:
        kwargs["sigma"] = max(0.5, kwargs.pop("sigma_ms") * kwargs.pop("fs") / 1000.0)
    kwargs.pop("fs", None)
    return spread_groups_by_rise(totals, calcium, factor, **kwargs)


def capture_totals(model, test):
    """The model's default rates on ``test`` and each trace's group totals.

    Returns ``(rates, [(row, totals, calcium, factor), ...])`` for the traces
    whose groups have more than one frame.
    """
    import calgan_sklearn.models._inference as inference
    from calgan_sklearn.evaluation import _predict_params

    captured = []
    original = inference.spread_groups_by_rise

    def capture(totals, calcium, factor, **kwargs):
        captured.append((np.array(totals, dtype=np.float64), np.array(calcium), factor))
        return original(totals, calcium, factor, **kwargs)

    inference.spread_groups_by_rise = capture
    try:
        with _predict_params(model, test):  # the test data's fs and units, as in bench_heldout
            default = model.predict(test.calcium)
    finally:
        inference.spread_groups_by_rise = original
    # chunks run in threads: find each captured trace by its values
    lengths = np.isfinite(test.calcium).sum(axis=1)
    rows = []
    for totals, calcium, factor in captured:
        n = len(calcium)
        i = next(
            i
            for i in np.flatnonzero(lengths == n)
            if np.array_equal(test.calcium[i, :n].astype(calcium.dtype), calcium)
        )
        rows.append((i, totals, calcium, factor))
    return default, rows


def phase_mean(model, test, default, k):
    """Mean of ``default`` and the rates of the traces started ``j * factor / k`` frames later."""
    from calgan_sklearn.evaluation import _predict_params
    from calgan_sklearn.models._inference import network_rate

    factor = network_rate(float(test.fs))[0]
    shifts = sorted({int(round(j * factor / k)) for j in range(1, k)} - {0})
    total = default.astype(np.float64)
    for shift in shifts:
        with _predict_params(model, test):
            later = model.predict(test.calcium[:, shift:])
        total[:, shift:] += later
        total[:, :shift] += default[:, :shift]
    return (total / (len(shifts) + 1)).astype(np.float32)


def sweep_dataset(model, test, variants):
    """Correlations of the model's default placement and of each variant on ``test``."""
    from calgan_sklearn.evaluation import score_rates

    fs = float(test.fs)
    default, captured = capture_totals(model, test)
    scores = {"default": score_rates(test.spikes, default, fs, neuron=test.neuron)}
    oasis = {}
    if any("oasis" in v for v in variants):
        from calgan_sklearn.baselines import OASIS

        orders = {v.get("p", 1) for v in variants if "oasis" in v}
        for p in orders:
            deconvolve = OASIS(p=p, penalty=1, calibrate=False, fs=fs).fit(test.calcium)
            oasis[p] = deconvolve.predict(test.calcium)
    for variant in variants:
        if "phases" in variant:
            scores[json.dumps(variant)] = score_rates(
                test.spikes,
                phase_mean(model, test, default, variant["phases"]),
                fs,
                neuron=test.neuron,
            )
            continue
        rates = np.full(test.calcium.shape, np.nan, dtype=np.float32)
        for i, totals, calcium, factor in captured:
            o = oasis[variant.get("p", 1)][i] if "oasis" in variant else None
            rates[i, : len(calcium)] = spread(
                {**variant, "fs": fs}, totals, calcium, factor, test.spikes[i], oasis=o
            )
        scores[json.dumps(variant)] = score_rates(test.spikes, rates, fs, neuron=test.neuron)
    return scores


def main(argv=None):
    from calgan_sklearn import load_model
    from calgan_sklearn.models._inference import MAX_NETWORK_FS, network_rate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, help="folder of bench_heldout.py --save-models")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", default=None, help="a JSON list of dicts")
    parser.add_argument("--json", type=Path, default=None, help="write all scores here")
    parser.add_argument(
        "--divisor",
        type=float,
        default=1.0,
        help="score each dataset resampled to its native rate / this (where above 20 Hz)",
    )
    args = parser.parse_args(argv)
    variants = json.loads(args.variants) if args.variants else VARIANTS

    results = {}
    for k, fold in enumerate(FOLDS, 1):
        model = load_model(args.models / f"fold{k}")
        for name in fold:
            test = load_one(args.data, name, None)
            if args.divisor != 1:
                if float(test.fs) / args.divisor <= MAX_NETWORK_FS:
                    continue  # one frame per group at that rate
                test = load_one(args.data, name, float(test.fs) / args.divisor)
            if network_rate(float(test.fs))[0] == 1:
                continue  # one frame per group: nothing to place
            scores = sweep_dataset(model, test, variants)
            results[name] = {v: {m: float(x) for m, x in s.items()} for v, s in scores.items()}
            row = " ".join(f"{s['correlation']:.3f}" for s in scores.values())
            print(f"{name:38s} {float(test.fs):5.0f} Hz  {row}", flush=True)
    names = list(next(iter(results.values())))
    default = np.array([r["default"]["correlation"] for r in results.values()])
    print(f"\nmean correlation over {len(results)} datasets, default {default.mean():.4f}:")
    for v in names[1:]:
        r = np.array([res[v]["correlation"] for res in results.values()])
        print(
            f"{v:45s} {r.mean():.4f} ({r.mean() - default.mean():+.4f}; "
            f"better on {int((r > default + 1e-4).sum())} of {len(r)})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
