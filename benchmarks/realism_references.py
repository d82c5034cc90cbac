"""Non-adversarial reference generators for ``bench_realism.py --generator``.

``transplant(train)`` renders a spike train the way one training neuron would
have answered it: that neuron's own linear spike-to-calcium kernel (least
squares, in units of its noise SD) applied to the new spike train, plus a
stretch of that neuron's own residual (its fluorescence minus its kernel's
prediction: noise that is not white, drift, neuropil, the transients its
kernel misses), in the style (baseline, noise SD) of the ``like`` trace. Every
part comes from real recordings of the training neurons; nothing is learned
beyond one kernel per neuron, and nothing of the held-out neurons but the
baseline and noise SD that ``CalciumGAN.sample(like=...)`` reads too.

It is a reference, not a method: how close to real can a renderer get that
reuses real training neurons wholesale? Usage::

    python benchmarks/bench_realism.py --generator realism_references:transplant --tstr none

Variants: ``transplant_pooled`` renders with one kernel fitted on all training
neurons together (the dataset's average response), adding each donor's residual
from its own kernel; ``transplant_scaled`` sets the kernel's gain so that the
rendering's spread (in noise SDs) is the ``like`` trace's; ``transplant_matched``
takes as donor the training neuron whose spread is closest to the ``like``
trace's; ``transplant_level`` takes no slow baseline from anyone: donors and
``like`` traces are put in noise units around their 10th percentile (as
``CalciumGAN`` does), so a rendering keeps its donor's drift, not the ``like``
trace's. Figures: ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from calgan_sklearn.signal import noise_sd, rolling_baseline, trace_lengths

KERNEL_SECONDS = 4.0  # long enough for GCaMP6s's decay
LEAD_FRAMES = 2  # the kernel may start before the spike frame (timing jitter)
MIN_SPIKES = 10  # donors need this many spikes for a kernel of their own


def _noise_units(x, fs, level=False):
    """``(x - baseline) / noise SD``, and the two (one finite trace); the baseline a
    30 s rolling one, or with ``level`` the 10th percentile."""
    base = np.percentile(x, 10.0) if level else rolling_baseline(x, 30.0, fs=fs)
    sd = max(float(noise_sd(x)), 1e-12)
    return (x - base) / sd, base, sd


def _fit_kernel(pairs, lags, ridge=1.0):
    """Least-squares kernel over ``(x, s)`` pairs, with a small ridge.

    The normal equations from correlations (FFT): the spike train's
    autocorrelation makes the Gram matrix, its cross-correlation with ``x``
    the right-hand side (the few frames within a kernel of a trace's ends
    count as if the spike train went on with zeros)."""
    span = int(lags.max() - lags.min())
    auto = np.zeros(2 * span + 1)
    rhs = np.zeros(len(lags))
    for x, s in pairs:
        n = len(s)
        a = fftconvolve(s, s[::-1])  # a[n - 1 + d] = sum_t s[t] s[t - d]
        c = fftconvolve(x, s[::-1])  # c[n - 1 + k] = sum_t x[t] s[t - k]
        for d in range(-span, span + 1):
            if abs(d) < n:
                auto[span + d] += a[n - 1 + d]
        ok = np.abs(lags) < n
        rhs[ok] += c[n - 1 + lags[ok]]
    gram = auto[span + lags[:, None] - lags[None, :]] + ridge * np.eye(len(lags))
    return np.linalg.solve(gram, rhs)


def _render(s, kernel, lags):
    """``sum_j kernel[j] * s[t - lags[j]]`` (zero outside the trace)."""
    lead = -int(lags[0])
    return fftconvolve(s, kernel)[lead : lead + len(s)]


def _donors(train, level=False):
    """Per training neuron: its (noise-unit trace, spikes) pairs."""
    fs = float(train.fs)
    donors = {}
    for i, n in enumerate(trace_lengths(train.calcium)):
        if n < 2:
            continue
        x, _, _ = _noise_units(train.calcium[i, :n], fs, level)
        s = np.nan_to_num(train.spikes[i, :n])
        donors.setdefault(train.neuron[i], []).append((x, s))
    return donors


def _gain(clean, resid, target_var):
    """Gain ``g`` on ``clean`` so that ``var(g * clean + resid)`` is ``target_var``."""
    a, b = np.var(clean), 2.0 * np.cov(clean, resid)[0, 1]
    c = np.var(resid) - target_var
    if a <= 1e-12 or b * b - 4 * a * c < 0:
        return 1.0
    return float(np.clip((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a), 0.25, 4.0))


def _make(train, like=(), pooled=False, scaled=False, matched=False, level=False, random_state=0):
    fs = float(train.fs)
    lags = np.arange(-LEAD_FRAMES, int(round(KERNEL_SECONDS * fs)))
    donors = _donors(train, level)
    kernels, residuals, spreads = {}, {}, {}
    shared = _fit_kernel([p for pairs in donors.values() for p in pairs], lags)
    for neuron, pairs in donors.items():
        spikes = sum(float(s.sum()) for _, s in pairs)
        own = _fit_kernel(pairs, lags) if spikes >= MIN_SPIKES else shared
        kernel = shared if pooled else own
        kernels[neuron] = kernel
        residuals[neuron] = np.concatenate([x - _render(s, own, lags) for x, s in pairs])
        spreads[neuron] = np.log(np.std(np.concatenate([x for x, _ in pairs])))
    names = sorted(kernels)
    styles = [np.asarray(c, dtype=float) for c in like]

    def generator(spikes):
        spikes = np.asarray(spikes, dtype=float)
        rng = np.random.default_rng(random_state)
        style = next((c for c in styles if c.shape == spikes.shape), None)
        out = np.full(spikes.shape, np.nan)
        lengths = trace_lengths(spikes if style is None else style)
        for i, n in enumerate(lengths):
            donor = names[rng.integers(len(names))]
            if style is not None:
                z, base, sd = _noise_units(style[i, :n], fs, level)
                if matched:
                    # the donor whose spread (in noise SDs) is closest to the like trace's
                    donor = min(names, key=lambda d: abs(spreads[d] - np.log(np.std(z))))
            r = residuals[donor]
            start = rng.integers(len(r))
            stretch = np.resize(np.roll(r, -start), n)
            clean = _render(np.nan_to_num(spikes[i, :n]), kernels[donor], lags)
            if style is not None:
                gain = _gain(clean, stretch, np.var(z)) if scaled else 1.0
                x = base + sd * (gain * clean + stretch)
            else:
                x = clean + stretch
            out[i, :n] = x
        return out

    return generator


def transplant(train, like=(), random_state=0):
    """Each rendering from one training neuron's own kernel and residual."""
    return _make(train, like, pooled=False, random_state=random_state)


def transplant_pooled(train, like=(), random_state=0):
    """One kernel for the dataset, each donor's own residual."""
    return _make(train, like, pooled=True, random_state=random_state)


def transplant_scaled(train, like=(), random_state=0):
    """As :func:`transplant`, the kernel's gain set so the rendering's spread (in
    noise SDs) is the ``like`` trace's."""
    return _make(train, like, scaled=True, random_state=random_state)


def transplant_matched(train, like=(), random_state=0):
    """As :func:`transplant`, the donor the training neuron whose spread (in noise
    SDs) is closest to the ``like`` trace's."""
    return _make(train, like, matched=True, random_state=random_state)


def transplant_level(train, like=(), random_state=0):
    """As :func:`transplant`, every trace around its 10th percentile: a rendering keeps
    its donor's slow drift and takes only a level and noise SD from the ``like`` trace."""
    return _make(train, like, level=True, random_state=random_state)


__all__ = [
    "transplant",
    "transplant_pooled",
    "transplant_scaled",
    "transplant_matched",
    "transplant_level",
]
