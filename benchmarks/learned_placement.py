"""Learn where each group's spikes lie from ground truth, held out by fold.

Usage::

    python benchmarks/bench_heldout.py --save-models runs/m      # the 8 fold models
    python benchmarks/learned_placement.py runs/m

Above 20 Hz the network of :class:`~calgan_sklearn.models._inference.DeepSpikeInference`
estimates expected spikes per group of frames, and a fixed rule
(:func:`calgan_sklearn.signal.spread_groups_by_rise`) places them on the frames
where the calcium rises. This script replaces the rule's weight by one learned
from ground truth: ``w = exp(theta . x)``, where ``x`` holds hinge functions of
the calcium's smoothed derivative (in noise SDs) at several smoothings and short
lags (in ms, so the same at every frame rate). ``theta`` is fitted as a
conditional logit: each true spike must be found among the ``2 * factor + 1``
frames around it, every dataset weighing the same. For each fold, ``theta`` is
fitted on the datasets of the other folds only, then the fold model's group
totals on its held-out datasets are spread with the learned weight (same
interpolation and neighbourhood as the rule) and scored with the SpikeFinder
correlation, next to the rule's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d
from scipy.optimize import minimize
from scipy.special import logsumexp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_heldout import FOLDS  # noqa: E402
from placement_sweep import capture_totals  # noqa: E402
from train_pretrained import DEFAULT_DATA, load_one  # noqa: E402

SIGMAS = (1.0, 2.0, 3.0, 5.0)  # frames
LAGS_MS = (0.0, 10.0, 25.0)  # the derivative this long after the frame
KNOTS = (0.0, 1.0, 2.0, 4.0)  # noise SDs


def _kernel_norm(sigma):
    impulse = np.zeros(2 * int(4 * sigma + 1) + 3)
    impulse[len(impulse) // 2] = 1.0
    return float(np.sqrt(np.sum(np.diff(gaussian_filter1d(impulse, sigma)) ** 2)))


def rise_width(c, noise, fs):
    """Frames at half height of the mean derivative peak of the trace's large rises."""
    from scipy.signal import find_peaks

    z = np.diff(gaussian_filter1d(c, 1.0), prepend=c[0]) / (noise * _kernel_norm(1.0) + 1e-12)
    half = max(int(0.3 * fs), 3)
    peaks, props = find_peaks(z, height=5.0, distance=half)
    peaks = peaks[(peaks >= half) & (peaks < len(z) - half)]
    if len(peaks) < 3:
        return None
    mean = np.mean([z[p - half : p + half + 1] for p in peaks], axis=0)
    above = mean >= mean[half] / 2
    lo = half
    while lo > 0 and above[lo - 1]:
        lo -= 1
    hi = half
    while hi < len(mean) - 1 and above[hi + 1]:
        hi += 1
    return float(hi - lo + 1)


SHAPE_GRID = np.arange(-0.1, 0.4001, 0.01)  # seconds around a large rise


def transient_shape(calcium, fs):
    """Mean shape of a recording's large rises on a fixed time grid, peak 1 (or None)."""
    from scipy.signal import find_peaks

    from calgan_sklearn.signal import noise_sd

    shapes = []
    for row in np.atleast_2d(calcium):
        c = np.asarray(row[np.isfinite(row)], dtype=np.float64)
        noise = float(noise_sd(c))
        z = np.diff(gaussian_filter1d(c, 1.0), prepend=c[0]) / (noise * _kernel_norm(1.0) + 1e-12)
        peaks, _ = find_peaks(z, height=5.0, distance=max(int(0.3 * fs), 1))
        t = np.arange(len(c)) / fs
        for p in peaks:
            times = t[p] + SHAPE_GRID
            if times[0] < 0 or times[-1] > t[-1]:
                continue
            shape = np.interp(times, t, gaussian_filter1d(c, 0.5))
            shape -= shape[0]
            if shape.max() > 0:
                shapes.append(shape / shape.max())
    return np.median(shapes, axis=0) if len(shapes) >= 3 else None


def placement_features(
    calcium, fs, sigmas=SIGMAS, lags_ms=LAGS_MS, rule=False, accel=False, kinetic=False, log=False
):
    """Hinge features of the smoothed derivative, ``(n_frames, n_features)`` float32."""
    from calgan_sklearn.signal import noise_sd

    c = np.asarray(calcium, dtype=np.float64)
    noise = float(noise_sd(c))
    n = len(c)
    cols = []
    if kinetic:  # smoothing and lags in units of the trace's own rise
        width = rise_width(c, noise, fs) or 3.0
        sigmas = [max(0.5, a * width) for a in sigmas]
        lags_ms = [1000.0 * b * width / fs for b in lags_ms]
    if rule:  # the rule's own weight, log(max(z - 2, 0) + 1) at sigma=3
        smooth = gaussian_filter1d(c, 3.0)
        z = np.diff(smooth, prepend=smooth[0]) / (noise * _kernel_norm(3.0) + 1e-12)
        cols.append(np.log1p(np.maximum(z - 2.0, 0.0)))
    for sigma in sigmas:
        smooth = gaussian_filter1d(c, sigma)
        z = np.diff(smooth, prepend=smooth[0]) / (noise * _kernel_norm(sigma) + 1e-12)
        for lag_ms in lags_ms:
            lag = int(round(lag_ms * fs / 1000.0))
            zl = np.concatenate([z[lag:], np.full(lag, z[-1])]) if lag else z
            zl = zl[:n]
            for k in KNOTS:
                cols.append(np.maximum(zl - k, 0.0))
            cols.append(np.maximum(-zl, 0.0))
            if log:  # a weight growing like a power of the rise, not exponentially
                cols[-len(KNOTS) - 1 :] = [np.log1p(col) for col in cols[-len(KNOTS) - 1 :]]
        if accel:  # the derivative's rise: where a transient starts
            a = np.diff(z, prepend=z[0])
            a /= float(np.median(np.abs(a - np.median(a)))) / 0.6745 + 1e-12
            for k in KNOTS:
                cols.append(np.maximum(a - k, 0.0))
            cols.append(np.maximum(-a, 0.0))
            if log:
                cols[-len(KNOTS) - 1 :] = [np.log1p(col) for col in cols[-len(KNOTS) - 1 :]]
    return np.stack(cols, axis=1).astype(np.float32)


def spike_events(data, factor, rng, max_events=3000, rows=None, **features):
    """Windows of features around true spikes: ``(events, 2 * factor + 1, F)`` and counts."""
    windows, counts = [], []
    half = factor
    for i in range(len(data.calcium)) if rows is None else rows:
        ok = np.isfinite(data.calcium[i])
        n = int(ok.sum())
        spikes = np.nan_to_num(data.spikes[i, :n])
        frames = np.flatnonzero(spikes > 0)
        frames = frames[(frames >= half) & (frames < n - half)]
        if not len(frames):
            continue
        x = placement_features(data.calcium[i, :n], float(data.fs), **features)
        idx = frames[:, None] + np.arange(-half, half + 1)[None, :]
        windows.append(x[idx])
        counts.append(spikes[frames])
    if not windows:
        return None
    windows, counts = np.concatenate(windows), np.concatenate(counts)
    if len(windows) > max_events:
        keep = rng.choice(len(windows), max_events, replace=False)
        windows, counts = windows[keep], counts[keep]
    return windows, counts.astype(np.float64)


def fit_theta(events, l2=1e-2, prior=None):
    """Conditional-logit ``theta``: each dataset's events weigh the same (L2 towards ``prior``)."""
    n_feat = next(iter(events.values()))[0].shape[2]

    def loss(theta):
        total, grad = 0.0, np.zeros(n_feat)
        for windows, counts in events.values():
            centre = windows.shape[1] // 2
            scores = windows @ theta  # (events, W)
            lse = logsumexp(scores, axis=1)
            p = np.exp(scores - lse[:, None])
            w = counts / counts.sum()
            total += float(np.sum(w * (lse - scores[:, centre])))
            expected = np.einsum("ew,ewf->ef", p, windows)
            grad += (w[:, None] * (expected - windows[:, centre])).sum(axis=0)
        total /= len(events)
        grad /= len(events)
        d = theta - centre0
        return total + l2 * d @ d, grad + 2 * l2 * d

    centre0 = np.zeros(n_feat) if prior is None else prior
    result = minimize(loss, centre0.copy(), jac=True, method="L-BFGS-B")
    return result.x


def spread_by_weight(totals, weight, factor):
    """The rule's interpolation and neighbourhood with another per-frame weight."""
    n = len(weight)
    local = uniform_filter1d(weight, 2 * factor, mode="nearest")
    rel = weight / local
    last = n - (len(totals) - 1) * factor
    sizes = np.full(len(totals), float(factor))
    sizes[-1] = last
    centres = np.arange(len(totals)) * float(factor) + (sizes - 1) / 2.0
    rates = rel * np.interp(np.arange(n, dtype=np.float64), centres, totals / sizes)
    s = rates.sum()
    return rates * (totals.sum() / s) if s > 0 else rates


OWN = []


def own_scores(args, test, default, captured, theta, features, fs):
    """Fit on K of the dataset's neurons (towards ``theta``), score its other neurons."""
    from calgan_sklearn.evaluation import score_rates

    neurons = np.unique(test.neuron)
    if len(neurons) <= args.own:
        return
    rng = np.random.default_rng(1)
    factor = captured[0][3]
    feats = {i: placement_features(c, fs, **features) for i, _, c, _ in captured}
    rule_r, own_r = [], []
    for _ in range(args.draws):
        chosen = rng.choice(neurons, args.own, replace=False)
        rows = np.flatnonzero(np.isin(test.neuron, chosen))
        got = spike_events(test, factor, rng, args.max_events, rows=rows, **features)
        if got is None:
            continue
        own = fit_theta({"own": got}, args.own_l2, prior=None if args.own_zero else theta)
        rest = np.flatnonzero(~np.isin(test.neuron, chosen))
        rates = np.full(test.calcium.shape, np.nan)
        for i, totals, calcium, _ in captured:
            weight = np.exp(np.clip(feats[i] @ own, -30, 30))
            rates[i, : len(calcium)] = spread_by_weight(totals, weight, factor)
        kw = {"neuron": test.neuron[rest]}
        rule_r.append(score_rates(test.spikes[rest], default[rest], fs, **kw)["correlation"])
        own_r.append(score_rates(test.spikes[rest], rates[rest], fs, **kw)["correlation"])
    if own_r:
        OWN.append((np.mean(rule_r), np.mean(own_r)))
        print(
            f"  own {args.own} neurons x {len(own_r)} draws: rule {np.mean(rule_r):.3f} "
            f"own {np.mean(own_r):.3f} (other neurons)"
        )


def main(argv=None):
    from calgan_sklearn import load_model
    from calgan_sklearn.evaluation import score_rates
    from calgan_sklearn.models._inference import network_rate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, help="folder of bench_heldout.py --save-models")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--max-events", type=int, default=3000)
    parser.add_argument("--sigmas", type=float, nargs="+", default=SIGMAS)
    parser.add_argument("--lags-ms", type=float, nargs="+", default=LAGS_MS)
    parser.add_argument("--rule", action="store_true", help="the rule's weight as a feature")
    parser.add_argument("--accel", action="store_true", help="the derivative's rise as features")
    parser.add_argument("--log", action="store_true", help="log1p of the hinge features")
    parser.add_argument(
        "--kinetic", action="store_true", help="sigmas and lags (as fractions) of the rise width"
    )
    parser.add_argument(
        "--in-sample", action="store_true", help="fit on all datasets (not held out: a reference)"
    )
    parser.add_argument("--train-on", nargs="+", default=None, help="fit on these datasets only")
    parser.add_argument(
        "--knn", type=int, default=0, help="fit on the K training datasets of nearest rise shape"
    )
    parser.add_argument(
        "--own", type=int, default=0, help="also fit on K neurons of the held-out dataset itself"
    )
    parser.add_argument("--draws", type=int, default=10, help="draws of those K neurons")
    parser.add_argument("--own-l2", type=float, default=1e-2, help="L2 towards the pooled theta")
    parser.add_argument("--own-zero", action="store_true", help="L2 towards zero instead")
    parser.add_argument("--min-factor", type=int, default=2, help="rule below this group size")
    args = parser.parse_args(argv)
    features = {
        "sigmas": args.sigmas,
        "lags_ms": args.lags_ms,
        "rule": args.rule,
        "accel": args.accel,
        "kinetic": args.kinetic,
        "log": args.log,
    }

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    names = [name for fold in FOLDS for name in fold]
    events, factors, shapes = {}, {}, {}
    for name in names:
        data = load_one(args.data, name, None)
        factor = network_rate(float(data.fs))[0]
        factors[name] = factor
        if args.knn:
            shapes[name] = transient_shape(data.calcium, float(data.fs))
        if factor > 1:
            got = spike_events(data, factor, rng, args.max_events, **features)
            if got is not None:
                events[name] = got
    print(f"events from {len(events)} datasets in {time.perf_counter() - t0:.0f} s", flush=True)

    rows = []
    for k, fold in enumerate(FOLDS, 1):
        tested = [name for name in fold if factors[name] > 1]
        if not tested:
            continue
        train = {n: e for n, e in events.items() if args.in_sample or n not in fold}
        if args.train_on:
            train = {n: e for n, e in events.items() if n in args.train_on}
        if not args.knn:
            theta = fit_theta(train, args.l2)
        model = load_model(args.models / f"fold{k}")
        for name in tested:
            if args.knn:
                near = sorted(
                    (n for n in train if shapes[n] is not None),
                    key=lambda n: float(np.sum((shapes[n] - shapes[name]) ** 2)),
                )[: args.knn]
                print(f"  {name}: nearest rises {near}")
                theta = fit_theta({n: train[n] for n in near}, args.l2)
            test = load_one(args.data, name, None)
            fs = float(test.fs)
            default, captured = capture_totals(model, test)
            learned = np.full(test.calcium.shape, np.nan, dtype=np.float64)
            for i, totals, calcium, factor in captured:
                if factor < args.min_factor:
                    learned[i, : len(calcium)] = default[i, : len(calcium)]
                    continue
                weight = np.exp(
                    np.clip(placement_features(calcium, fs, **features) @ theta, -30, 30)
                )
                learned[i, : len(calcium)] = spread_by_weight(totals, weight, factor)
            if args.own:
                own_scores(args, test, default, captured, theta, features, fs)
            r_default = score_rates(test.spikes, default, fs, neuron=test.neuron)["correlation"]
            r_learned = score_rates(test.spikes, learned, fs, neuron=test.neuron)["correlation"]
            rows.append((name, fs, r_default, r_learned))
            print(
                f"fold {k} {name:38s} {fs:5.0f} Hz  rule {r_default:.3f}  learned {r_learned:.3f}"
            )  # noqa: E501
    rule = np.array([r[2] for r in rows])
    learned = np.array([r[3] for r in rows])
    print(
        f"\nmean over {len(rows)} datasets: rule {rule.mean():.4f}, learned {learned.mean():.4f} "
        f"({learned.mean() - rule.mean():+.4f}; better on {int((learned > rule + 1e-4).sum())})"
        f"; {time.perf_counter() - t0:.0f} s"
    )
    if OWN:
        a = np.array(OWN)
        print(
            f"own neurons, mean over {len(a)} datasets: rule {a[:, 0].mean():.4f}, "
            f"own {a[:, 1].mean():.4f} (better on {int((a[:, 1] > a[:, 0] + 1e-4).sum())})"
        )


if __name__ == "__main__":
    main()
