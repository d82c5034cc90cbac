"""CalciumGAN: a conditional Wasserstein GAN that renders fluorescence windows."""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.optimize import minimize_scalar
from scipy.signal import fftconvolve, welch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_method_params,
    check_array,
    check_consistent_length,
    check_is_fitted,
)

from .._realism import two_sample_auc
from .._validation import check_fs, check_spikes, check_traces, warn_implausible
from ..signal import noise_sd, trace_lengths, unpad_traces
from ._base import COMMON_PARAMETER_CONSTRAINTS, BaseKerasEstimator
from ._networks import (
    ConditionalWGAN,
    TraceWGAN,
    build_critic,
    build_generator,
    build_trace_generator,
    n_dilated_layers,
)
from ._scaling import NORMALIZE_CONSTRAINT, WindowScalingMixin

__all__ = ["CalciumGAN"]

_BANK_SIZE = 1024

# ---- trace mode (fs set) ----
#: Percentile of each trace taken as its baseline.
_BASELINE_PERCENTILE = 10.0
#: Seconds of spike history the generator sees: its receptive field, the length
#: of its linear spike response and the warm-up of each training crop.
_CONTEXT_SECONDS = 5.0
#: Channels of per-frame noise of the trace generator.
_NOISE_CHANNELS = 4
#: Seconds averaged into the generator's slow-noise channel.
_SLOW_SECONDS = 1.0
#: Training traces whose (baseline, noise SD) pairs are kept for sampling.
_MAX_KEPT_TRACES = 4096
#: Frames rendered per generator call when sampling (bounds memory).
_SAMPLE_FRAMES = 2_000_000
#: Smallest SD of the log noise SD that standardises the noise-level channel,
#: and the largest standardised level the networks are shown.
_MIN_LEVEL_STD, _MAX_LEVEL = 0.5, 3.0
#: Ridge of the least-squares spike response (relative to the spikes' power).
_RESPONSE_RIDGE = 1e-2
#: Frames of training residuals kept for ``trace_noise="residual"`` (saved with
#: the model: 2**17 frames, 73 min at 30 Hz).
_MAX_RESIDUAL_FRAMES = 1 << 17
#: Frames whose linear spike response exceeds this many noise SDs (or with a
#: spike, widened by ``_ACTIVE_PAD`` frames each way) are active: their residual
#: is replaced by noise of the quiet frames' spectrum in the residual bank.
_QUIET_LEVEL, _ACTIVE_PAD = 0.5, 2
#: Segments (seconds) of the quiet frames' power spectrum; drift slower than that
#: comes from the levels of the quiet frames on either side of a fill.
_SPECTRUM_SECONDS = 5.0
#: Spikes a trace needs for a residual from a spike response of its own.
_MIN_OWN_SPIKES = 10


#: Condition channels of the trace networks: spikes, noise level, activity spread
#: (and, in GANs fitted since the gain channel, the predicted log response gain).
_COND_CHANNELS = 3

#: Spikes a trace needs to count in the fit of the response gain, the most
#: weight one trace gets there, and the ridge of that fit.
_MIN_GAIN_SPIKES, _MAX_GAIN_WEIGHT, _GAIN_RIDGE = 3, 50.0, 1.0
#: Rate (Hz) added before the log in the gain's features (traces without spikes).
_RATE_FLOOR = 0.01
#: kernels of each style's bank (neurons' own kinetics), and the spike count at
#: which a neuron's own kernel gets half the weight against its style's median
_N_KERNELS, _SHRINK_SPIKES = 16, 50.0
#: a neuron's kernel joins the bank if it correlates this well with the median
#: (a fit broken by drift or few, crowded spikes does not)
_MIN_KERNEL_CORRELATION = 0.5
#: the response curve's power range ends at this percentile of the responses
_CURVE_PERCENTILE = 99.9
#: ``(a, p, vmax)`` of the power-form response curve that leaves responses as they are
_IDENTITY_CURVE = np.array([1.0, 1.0, 1.0])
#: raised cosines spanning a power-law kernel, the range of the curve's
#: exponent, the neurons (of a style) whose fits choose it, and the
#: Levenberg-Marquardt iterations of each fit
_KERNEL_BASIS, _POWER_RANGE, _POWER_TRACES, _POWER_ITERATIONS = 12, (1.0, 3.0), 32, 30
#: frames of a trace those fits see at most (a random stretch of longer ones)
_POWER_FRAMES = 1 << 17
#: crops scored by monitor="realism" (those of bench_realism.py)
_REALISM_CROP_SECONDS = 5.0
#: training traces monitor="realism" scores without a validation part
_REALISM_TRACES = 32


def _trace_stats(X):
    """Each trace's baseline (low percentile) and noise SD, from its unpadded frames."""
    lengths = trace_lengths(X)
    loc = np.array([np.percentile(X[i, :n], _BASELINE_PERCENTILE) for i, n in enumerate(lengths)])
    return loc, noise_sd(X)  # noise_sd leaves out the NaN padding


def _trace_spread(X, loc, scale):
    """Each trace's log activity spread: 99th percentile minus median, in noise SDs.

    Told to both networks with the noise level, it carries what a trace's
    calcium says about its transients' size (with its firing) without its
    spikes, so ``sample(like=...)`` can take it from unlabelled traces.
    """
    lengths = trace_lengths(X)
    out = np.empty(len(X))
    for i, n in enumerate(lengths):
        z = (X[i, :n] - loc[i]) / scale[i]
        p50, p99 = np.percentile(z, [50, 99])
        out[i] = np.log(max(p99 - p50, 0.1))
    return out


def _check_known(values, known, name, fitted):
    """Raise if ``values`` hold labels outside ``known`` (the labels seen in fit)."""
    unknown = np.setdiff1d(np.unique(values), known)
    if len(unknown):
        raise ValueError(
            f"{name} has labels {unknown[:10].tolist()} not seen in fit; this CalciumGAN "
            f"{fitted} {known.tolist()}."
        )


def _linear_response(Z, S, n_lags):
    """Least-squares causal kernel ``k`` and offset ``b`` with ``z ~ b + k * s``.

    Solved from the spikes' autocorrelation and the spike-calcium
    cross-correlation (FFT, summed over traces), with a small ridge; zeros
    when there are no spikes.
    """
    auto, cross = np.zeros(n_lags), np.zeros(n_lags)
    z_sum = s_sum = frames = 0.0
    for z, s in zip(Z, S):
        z0, s0 = z - z.mean(), s - s.mean()
        nfft = 1 << int(math.ceil(math.log2(len(s) + n_lags)))
        fs_, fz = np.fft.rfft(s0, nfft), np.fft.rfft(z0, nfft)
        auto += np.fft.irfft(fs_ * fs_.conj(), nfft)[:n_lags]
        cross += np.fft.irfft(fz * fs_.conj(), nfft)[:n_lags]
        z_sum, s_sum, frames = z_sum + z.sum(), s_sum + s.sum(), frames + len(z)
    if not auto[0] > 0:
        return np.zeros(n_lags), z_sum / max(frames, 1.0)
    auto = auto.copy()
    auto[0] *= 1.0 + _RESPONSE_RIDGE
    kernel = solve_toeplitz(auto, cross)
    return kernel, (z_sum - kernel.sum() * s_sum) / frames


def _own_kernels(Z, S, n_lags):
    """Each trace's own least-squares kernel (:func:`_linear_response`), or None
    for a trace with fewer than ``_MIN_OWN_SPIKES`` spikes."""
    return [
        _linear_response([z], [s], n_lags)[0] if s.sum() >= _MIN_OWN_SPIKES else None
        for z, s in zip(Z, S)
    ]


def _style_response(Z, S, own, n_lags, rng):
    """A style's kernel, offset, kernel bank, response curve and linear kernel.

    Fluorescence is a power of a linear calcium response: ``z ~ b + f(g k * s)``
    with ``f(u) = u**p`` above zero (:func:`_power`). Up to ``_POWER_TRACES``
    random traces with a linear kernel of their own ``own`` (:func:`_own_kernels`;
    ``_MIN_OWN_SPIKES`` spikes or more; a random stretch of ``_POWER_FRAMES``
    frames of longer ones) each get their own smooth kernel ``k``
    and offset ``b`` (:func:`_fit_power`), all at the exponent ``p`` in
    ``_POWER_RANGE`` that fits them best together (:func:`_power_kernels`):
    GCaMP transients of single spikes are several times smaller and shorter
    than a linear kernel fitted to bursts says. The style's kernel is the
    median of those kernels, its offset the median offset; the bank holds up
    to ``_N_KERNELS`` of them, each divided by its trace's gain of the median
    kernel (:func:`_power_gains`; so the gain channel sets a transient's size
    and the bank its shape: neurons' own kinetics) and shrunk toward the
    median by the spikes it was fitted to (half way at ``_SHRINK_SPIKES``);
    kernels that correlate less than ``_MIN_KERNEL_CORRELATION`` with the
    median (fits broken by drift) stay out.
    The curve is ``(1, p, vmax)``, ``vmax`` the 99.9th percentile of the fitted
    responses. The linear kernel, the median of ``own`` (for the residuals of
    traces without one), is returned last. With fewer than three traces of
    their own kernel: the pooled linear fit, alone in its bank, and the
    identity curve."""
    rows = [i for i, kernel in enumerate(own) if kernel is not None]
    if len(rows) >= 3:
        linear = np.median([own[i] for i in rows], axis=0)
        fit = [int(i) for i in rng.permutation(rows)[:_POWER_TRACES]]
        basis = _kernel_basis(n_lags)
        # a random stretch of long traces: the designs stay within memory
        cut = [_stretch(len(Z[i]), _POWER_FRAMES, rng) for i in fit]
        z_fit, s_fit = ([v[i][c] for i, c in zip(fit, cut)] for v in (Z, S))
        designs = [_basis_design(s, basis) for s in s_fit]
        power, params = _power_kernels(z_fit, designs)
        kernels = [basis @ w[:-1] for w in params]
        kernel = np.median(kernels, axis=0)
        gains = _power_gains(z_fit, s_fit, [kernel] * len(fit), power)
        bank = []
        for s, own_kernel, gain in zip(s_fit, kernels, gains):
            like = np.corrcoef(own_kernel, kernel)[0, 1] >= _MIN_KERNEL_CORRELATION
            if gain > 0 and like and len(bank) < _N_KERNELS:
                weight = s.sum() / (s.sum() + _SHRINK_SPIKES)
                bank.append(weight * own_kernel / gain + (1 - weight) * kernel)
        if len(bank) >= 3:
            responses = np.concatenate([X @ w[:-1] for X, w in zip(designs, params)])
            vmax = float(np.percentile(responses, _CURVE_PERCENTILE))
            offset = float(np.median([w[-1] for w in params]))
            return kernel, offset, bank, np.array([1.0, power, max(vmax, 1e-6)]), linear
    kernel, offset = _linear_response(Z, S, n_lags)
    return kernel, offset, [kernel], _IDENTITY_CURVE, kernel


def _stretch(n, most, rng):
    """All ``n`` frames, or a random stretch of ``most`` of them (a slice)."""
    if n <= most:
        return slice(0, n)
    start = int(rng.randint(n - most + 1))
    return slice(start, start + most)


def _kernel_basis(n_lags):
    """Raised cosines log-spaced in time (Pillow et al., 2008), ``(n_lags, k)``:
    smooth kernels of few parameters, fine near the spike and coarse in the tail."""
    k = min(_KERNEL_BASIS, n_lags)
    if k < 2:
        return np.ones((n_lags, 1))
    phi = np.log1p(np.arange(n_lags))
    centres = np.linspace(0.0, phi[-1], k)
    x = (phi[:, None] - centres) * np.pi / (2.0 * (centres[1] - centres[0]))
    return 0.5 * (1.0 + np.cos(np.clip(x, -np.pi, np.pi)))


def _basis_design(s, basis):
    """The spike train ``s`` through each basis function: ``(len(s), k)``."""
    return np.column_stack([fftconvolve(s, b)[: len(s)] for b in basis.T])


def _power(u, p):
    """``u**p`` above zero and ``u`` below: :class:`ResponseCurve`'s power form
    (``a = 1``) below its linear tail."""
    return np.where(u > 0, np.maximum(u, 0.0) ** p, u)


def _fit_power(z, X, p, start):
    """Levenberg-Marquardt least squares of ``z ~ b + _power(X w, p)``.

    Starts from ``start``, the linear fit ``(w, b)`` (:func:`_power_kernels`),
    rescaled so that its peak response stays, and returns ``(w, b)`` as one
    vector and the sum of squared residuals."""
    w = start.copy()
    peak = float(np.max(X @ w[:-1]))
    if peak > 0 and p != 1.0:
        w[:-1] *= peak ** (1.0 / p - 1.0)

    def residual(w):
        u = X @ w[:-1]
        r = z - w[-1] - _power(u, p)
        return u, r, float(r @ r)

    u, r, best = residual(w)
    damping = 1e-2
    for _ in range(_POWER_ITERATIONS):
        slope = np.where(u > 0, p * np.maximum(u, 1e-12) ** (p - 1.0), 1.0)
        J = np.column_stack([slope[:, None] * X, np.ones(len(z))])
        H, grad = J.T @ J, J.T @ r
        while damping < 1e8:
            step = np.linalg.solve(H + damping * np.diag(np.diag(H) + 1e-9), grad)
            u_new, r_new, new = residual(w + step)
            if new < best:
                w, u, r, damping = w + step, u_new, r_new, damping / 3.0
                done, best = best - new < 1e-7 * best, new
                break
            damping *= 4.0
        else:
            break
        if done:
            break
    return w, best


def _power_kernels(Z, designs):
    """The exponent in ``_POWER_RANGE`` whose fits (:func:`_fit_power`) leave the
    least squared residual summed over the traces, and each trace's fit there.
    The linear fits the searches start from are solved once, and the fits at
    each exponent tried are kept, so the chosen one is not fitted again."""
    starts = [
        np.linalg.lstsq(np.column_stack([X, np.ones(len(z))]), z, rcond=None)[0]
        for z, X in zip(Z, designs)
    ]
    fits = {}

    def total(p):
        fits[p] = [_fit_power(z, X, p, w) for z, X, w in zip(Z, designs, starts)]
        return sum(f[1] for f in fits[p])

    power = float(
        minimize_scalar(total, bounds=_POWER_RANGE, method="bounded", options={"xatol": 0.02}).x
    )
    if power not in fits:
        total(power)
    return power, [f[0] for f in fits[power]]


def _spike_rate(S, fs):
    """Spikes per second of each of the unpadded spike trains ``S``."""
    return np.array([float(np.sum(s)) * fs / max(len(s), 1) for s in S])


def _gain_features(spread, rate):
    """Features of the response gain: log activity spread and log firing rate."""
    return np.column_stack([spread, np.log(np.asarray(rate) + _RATE_FLOOR)])


def _power_gains(Z, S, kernels, powers):
    """Each trace's gain ``g`` of its response ``_power(g kernels[i] * s, p)`` in ``z``:
    from the least-squares scale ``g**p`` of ``_power(kernels[i] * s, p)`` (NaN where
    that is not positive), ``powers`` one ``p`` or one per trace."""
    powers = np.broadcast_to(np.asarray(powers, dtype=float), (len(Z),))
    gains = np.full(len(Z), np.nan)
    for i, (z, s, kernel, p) in enumerate(zip(Z, S, kernels, powers)):
        r = _power(fftconvolve(s, kernel)[: len(z)], p)
        r, z0 = r - r.mean(), z - z.mean()
        rr = float(r @ r)
        scale = float(r @ z0) / rr if rr > 0 else np.nan
        if scale > 0:
            gains[i] = scale ** (1.0 / p)
    return gains


def _fit_gain(features, gains, counts):
    """Weighted ridge fit of the log response gain on ``features`` (standardised).

    Returns the coefficients (one per feature, then the intercept) on the raw
    features, and the range of the log gains it was fitted to. Traces with
    fewer than ``_MIN_GAIN_SPIKES`` spikes or no positive gain do not count;
    with fewer than three that do, the gain is the weighted mean (or 1)."""
    ok = (counts >= _MIN_GAIN_SPIKES) & (gains > 0)
    n_feat = features.shape[1]
    if ok.sum() < 3:
        log_g = np.log(gains[ok]) if ok.any() else np.zeros(1)
        mean = float(np.average(log_g, weights=counts[ok] if ok.any() else None))
        return np.r_[np.zeros(n_feat), mean], np.array([mean, mean])
    X, y = features[ok], np.log(gains[ok])
    w = np.minimum(counts[ok], _MAX_GAIN_WEIGHT)
    mu = np.average(X, axis=0, weights=w)
    sd = np.sqrt(np.average((X - mu) ** 2, axis=0, weights=w))
    sd = np.where(sd > 1e-9, sd, 1.0)
    Xs = (X - mu) / sd
    y_mean = float(np.average(y, weights=w))
    A = Xs.T @ (w[:, None] * Xs) + _GAIN_RIDGE * np.eye(n_feat)
    beta = np.linalg.solve(A, Xs.T @ (w * (y - y_mean))) / sd
    return np.r_[beta, y_mean - float(beta @ mu)], np.array([y.min(), y.max()])


def _residual_of(z, s, kernel):
    """``z`` minus its linear spike response through ``kernel`` (float32, mean
    zero), and that response."""
    response = fftconvolve(s, kernel)[: len(z)]
    r = z - response
    return (r - r.mean()).astype(np.float32), response


def _active(response, s):
    """Frames near spikes: where the linear response exceeds ``_QUIET_LEVEL`` noise
    SDs or a spike falls, widened by ``_ACTIVE_PAD`` frames each way."""
    active = (np.abs(response) > _QUIET_LEVEL) | (s > 0)
    width = 2 * _ACTIVE_PAD + 1
    return np.convolve(active, np.ones(width), mode="same") > 0


def _runs(mask):
    """``(start, stop)`` of each run of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _quiet_spectrum(r, active, nseg):
    """Welch power spectrum (``fs=1``) of ``r`` over its quiet runs of ``nseg`` frames
    or more, and the frames it used (None, 0 without such runs)."""
    psd, used = 0.0, 0
    for a, b in _runs(~active):
        if b - a >= nseg:
            psd = psd + welch(r[a:b], nperseg=nseg)[1] * (b - a)
            used += b - a
    return (psd / used if used else None), used


def _coloured_noise(psd, n, rng):
    """Gaussian noise of ``n`` frames with the power spectrum ``psd`` (Welch, ``fs=1``)."""
    nseg = 2 * (len(psd) - 1)
    shape = np.sqrt(np.interp(np.fft.rfftfreq(n), np.arange(len(psd)) / nseg, psd))
    y = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    return y * np.sqrt(psd.sum() / nseg) / max(float(y.std()), 1e-12)


def _fill_active(r, active, psd, rng):
    """``r`` with each active run replaced by a line between the medians of the
    ``_ACTIVE_PAD * 2`` quiet frames on either side, plus noise of the quiet
    spectrum ``psd``, mean zero: the residual's noise and drift without the
    transients a linear response misses (they would turn up away from any spike)."""
    out = r.copy()
    noise = _coloured_noise(psd, len(r), rng)
    edge, n = 2 * _ACTIVE_PAD, len(r)
    for a, b in _runs(active):
        left = float(np.median(r[max(a - edge, 0) : a])) if a > 0 else None
        right = float(np.median(r[b : b + edge])) if b < n else None
        left, right = (left, right) if None not in (left, right) else (left or right or 0.0,) * 2
        out[a:b] = np.linspace(left, right, b - a + 2)[1:-1] + noise[a:b] - noise[a:b].mean()
    return (out - out.mean()).astype(np.float32)


def _residual_bank(Z, S, own, groups, shared, min_frames, nseg, rng):
    """Residual noise of the training traces, at most ``_MAX_RESIDUAL_FRAMES`` frames
    in all: a random stretch of at least ``min_frames`` frames (or all) of each of
    as many random traces as fit, every group (style) kept.

    Each is the trace's residual (:func:`_residual_of`: through its own kernel
    ``own[i]``, or its group's ``shared[g]`` where it has none) with the frames near its
    spikes filled (:func:`_fill_active`) with noise of the power spectrum of its
    quiet runs (segments of ``nseg`` frames, halved down to 8 for a group whose
    quiet runs of that length hold fewer than four), or of its group's quiet
    runs where it has fewer than four segments' worth (white noise of one noise
    SD for a group without any).

    Returns the concatenated residuals, the start of each (and the end), and
    each one's group."""

    def residual(i):
        kernel = own[i] if own[i] is not None else shared[int(groups[i])]
        r, response = _residual_of(Z[i], S[i], kernel)
        return r, _active(response, S[i])

    # segment lengths to try: nseg, halved (even) down to 8
    sizes = [nseg]
    while sizes[-1] >= 16:
        sizes.append(sizes[-1] // 4 * 2)
    # two passes (spectra at every size, then the kept residuals) rather than all
    # residuals in memory
    by_size = []
    for i in range(len(Z)):
        r, active = residual(i)
        by_size.append({n: _quiet_spectrum(r, active, n) for n in sizes})
    spectra, pooled, seg = [None] * len(Z), {}, {}
    for g in np.unique(groups):
        rows, g = np.flatnonzero(groups == g), int(g)
        # the longest segments of which the group's quiet runs hold four
        n = next((n for n in sizes if sum(by_size[i][n][1] for i in rows) >= 4 * n), sizes[-1])
        got = [by_size[i][n] for i in rows]
        for i, spectrum in zip(rows, got):
            spectra[i] = spectrum
        seg[g], used = n, sum(u for _, u in got)
        # white noise of one noise SD where a whole group has no quiet runs
        white = np.full(n // 2 + 1, 2.0)
        pooled[g] = sum(p * u for p, u in got if u) / used if used else white
    per = max(_MAX_RESIDUAL_FRAMES // len(Z), min_frames)
    parts, part_groups, seen, total = [], [], set(), 0
    for i in rng.permutation(len(Z)):
        g = int(groups[i])
        if total >= _MAX_RESIDUAL_FRAMES and g in seen:
            continue
        r, active = residual(i)
        psd, used = spectra[i]
        r = _fill_active(r, active, psd if used >= 4 * seg[g] else pooled[g], rng)
        r = r[_stretch(len(r), per, rng)]
        parts.append(r)
        part_groups.append(g)
        seen.add(g)
        total += len(r)
    starts = np.concatenate([[0], np.cumsum([len(r) for r in parts])]).astype(np.int64)
    return np.concatenate(parts), starts, np.array(part_groups, dtype=np.int64)


def _residual_stretches(bank, starts, bank_groups, groups, length, rng):
    """One stretch of ``length`` frames per entry of ``groups``, float32: from a
    kept residual of that group (drawn in proportion to its length), at a random
    frame, wrapping around within that residual where it is shorter.
    ``rng``: a ``numpy.random.Generator``."""
    sizes = np.diff(starts)
    out = np.empty((len(groups), length), np.float32)
    steps = np.arange(length)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        pool = np.flatnonzero(bank_groups == g)
        picks = rng.choice(pool, size=len(rows), p=sizes[pool] / sizes[pool].sum())
        for row, k in zip(rows, picks):
            out[row] = bank[starts[k] + (rng.integers(sizes[k]) + steps) % sizes[k]]
    return out


def _realism_crop(X, fs):
    """Crops (s) for scoring realism: 5 s, or the second longest trace, so that two
    traces give crops; None where that is under 8 frames (too short to score)."""
    lengths = np.sort(trace_lengths(X))
    frames = min(round(_REALISM_CROP_SECONDS * fs), int(lengths[-2]) if len(X) > 1 else 0)
    return frames / fs if frames >= 8 else None


class _RealismStopping(keras.callbacks.Callback):
    """Early stopping of a trace-mode :class:`CalciumGAN` on realism.

    Before training and after each epoch, the spike trains of the scored
    traces ``data`` (an ``(X, y, fit_params)`` triple: the validation part, or
    training traces) are rendered at their scale (``like=``, the same noise
    every time) and scored by
    :func:`~calgan_sklearn.evaluation.two_sample_auc` against them:
    ``val_auc`` in the history, lower is better. Training stops after
    ``patience`` epochs without a lower AUC, and the weights with the lowest
    (possibly the starting ones) are restored; ``gan.best_epoch_`` says which.
    """

    def __init__(self, gan, data, patience):
        super().__init__()
        self.gan, self.patience = gan, patience
        self.X, self.y, params = data
        self.style = params.get("style")
        self.crop_seconds = _realism_crop(self.X, check_fs(gan.fs))

    def _score(self):
        gan = self.gan
        rng = check_random_state(gan._seed)
        synthetic = gan._sample_traces(self.y, self.X, rng, self.style)[0]
        return two_sample_auc(
            self.X, synthetic, gan.fs, spikes=self.y, crop_seconds=self.crop_seconds
        )

    def on_train_begin(self, logs=None):
        self.best, self.best_epoch, self.wait = self._score(), 0, 0
        self.best_weights = self.model.get_weights()

    def on_epoch_end(self, epoch, logs=None):
        auc = self._score()
        if logs is not None:
            logs["val_auc"] = auc
        if auc < self.best:
            self.best, self.best_epoch, self.wait = auc, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)
        self.gan.best_epoch_ = self.best_epoch
        self.gan.best_val_auc_ = self.best


class _TraceCrops(keras.utils.PyDataset):
    """Random crops of ``warmup + crop`` frames: normalised calcium, and as condition its
    spikes and the trace's levels (``level``: one row of level channels per trace).

    A crop ends at a random frame at least ``crop`` frames into a trace (traces
    drawn in proportion to their length); frames before the trace's start are
    zero, which only the generator's warm-up sees. Without ``augment`` the
    crops are the same on every pass (validation). ``residual``, if given,
    ``(rng, trace_indices, frames) -> (n, frames)``, fills one more condition
    channel, last: residual noise for the generator (:class:`TraceWGAN`).
    """

    def __init__(
        self, Z, S, level, *, crop, warmup, batch_size, steps, augment, seed, residual=None
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.Z, self.S, self.level, self.residual = Z, S, level, residual
        self.crop, self.warmup, self.batch_size, self.steps = crop, warmup, batch_size, steps
        lengths = np.array([len(z) for z in Z], dtype=float)
        weights = np.where(lengths >= crop, lengths, 0.0)
        self.p = weights / weights.sum()
        self.augment, self.seed = augment, seed
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __getitem__(self, idx):
        rng = self.rng if self.augment else np.random.default_rng([self.seed, idx])
        W = self.warmup + self.crop
        n_level = self.level.shape[1]
        x = np.zeros((self.batch_size, W, 1), np.float32)
        c = np.zeros((self.batch_size, W, 1 + n_level + (self.residual is not None)), np.float32)
        rows = rng.choice(len(self.p), size=self.batch_size, p=self.p)
        for b, i in enumerate(rows):
            end = int(rng.integers(self.crop, len(self.Z[i]) + 1))
            lo = max(end - W, 0)
            x[b, W - (end - lo) :, 0] = self.Z[i][lo:end]
            c[b, W - (end - lo) :, 0] = self.S[i][lo:end]
            c[b, :, 1 : 1 + n_level] = self.level[i]
        if self.residual is not None:
            c[..., -1] = self.residual(rng, rows, W)
        return x, c


class CalciumGAN(WindowScalingMixin, BaseKerasEstimator):
    """Conditional Wasserstein GAN (WGAN-GP) of fluorescence windows.

    The generator maps Gaussian noise, and optionally a condition, to a window
    of fluorescence; the critic (a :func:`build_conv_trunk` stack, the same
    network family as :class:`SpikeClassifier`) scores windows. Training is a
    ``keras.Model`` with its own ``train_step``
    (:class:`~calgan_sklearn.models._networks.ConditionalWGAN`): ``n_critic``
    critic updates, then one generator update, per batch.

    Why WGAN-GP: its critic loss estimates the Wasserstein distance, which
    gives useful gradients even when real and generated windows barely overlap
    (common early on with sharp, sparse transients), and the gradient penalty
    (Gulrajani et al. 2017) enforces the critic's Lipschitz bound without
    changing the critic's layers. The latter matters here: the critic is a
    plain convolution stack whose weights transfer one-to-one to
    :class:`SpikeClassifier` (``init=gan``); spectral normalisation would
    rescale them. No batch normalisation is used (the penalty is per sample).

    Conditioning is chosen by ``y`` in :meth:`fit`:

    - ``y=None``: unconditional.
    - ``y`` of shape ``(n_windows,)``: a class label per window (e.g. spike /
      no spike), given to both networks as one-hot channels over the window.
    - ``y`` of shape ``(n_windows, window_length)``: spike counts per frame, so
      the generator renders the fluorescence a given spike train would
      produce (its causal dilated convolutions let a spike drive a transient
      that rises and decays after it).

    Windows are normalised per window (see ``normalize``) and the (baseline,
    noise) of training windows is kept, so :meth:`sample` returns windows in
    data units.

    **Trace mode** (``fs`` set): ``fit(X, y)`` takes whole calcium traces ``X``
    of shape ``(n_traces, n_frames)`` at ``fs`` Hz, NaN-padded at the end (the
    convention of :class:`DeepSpikeInference`; dF/F or any units), and their
    spike counts per frame ``y`` of the same shape, and
    ``sample(y=spike_trains)`` renders calcium of ``y``'s shape and NaN
    padding, in data units. Each trace is normalised (its 10th percentile
    subtracted, divided by its noise SD, :func:`calgan_sklearn.signal.noise_sd`)
    and its (baseline, noise SD) is kept. The generator
    (:func:`~calgan_sklearn.models._networks.build_trace_generator`) is fully
    convolutional and causal: spike counts, noise per frame (white and slow,
    and real residual noise of training traces, see ``trace_noise``) and
    a per-trace latent code (per-neuron amplitude, kinetics, noise colour) pass
    a linear spike response and a residual stack of dilated convolutions that
    see the last 5 s, so a spike drives a transient that rises and decays. The
    linear response starts from the least-squares kernel of the training data,
    so training refines a fitted linear model. Both networks are also told three
    numbers per trace: its noise level, its activity spread (99th percentile
    minus median, in noise SDs, on a log scale) and the log gain of its spike
    response predicted from the spread and the firing rate of its spikes
    (``gain_coef_``: a fit of the training traces' own least-squares gains),
    which scales the linear response from the start. The critic (the window
    critic above, conditioned on the spikes and those numbers) sees
    ``crop_seconds`` crops of real and rendered traces (WGAN-GP,
    :class:`~calgan_sklearn.models._networks.TraceWGAN`); an epoch draws about
    as many crop frames as the training traces hold. ``normalize`` is not used
    in trace mode.

    Rendered traces take the scale of a random training trace (baseline, noise
    SD and spread), or with ``sample(y=..., like=calcium)`` that of the
    matching trace of ``like``: unlabelled traces in the same units, whose
    baseline, noise level and spread set those of the rendering (a simple form
    of style transfer: the indicator's kinetics stay those learned in
    ``fit``). To learn several styles in one GAN, label the training traces
    (``fit(X, y, style=dataset_labels)``): both networks are told each trace's
    label, and ``sample(y=..., style="DS14")`` renders in the kinetics,
    transient size and noise learned from that dataset's traces (with
    ``like=`` too, in that style at the scale of the unlabelled traces).

    Parameters
    ----------
    latent_dim : int, default=16
        Dimension of the generator's noise input.
    filters : int, default=16
        Width of the first convolution block of both networks.
    kernel_size : int, default=5
        Convolution kernel size in frames.
    depth : int, default=2
        Strided blocks of the critic and upsampling blocks of the generator.
    n_critic : int, default=2
        Critic updates per generator update.
    gp_weight : float, default=10.0
        Weight of the gradient penalty.
    normalize : {"noise", "global"} or None, default="noise"
        Input scaling (as in :class:`SpikeClassifier`); window mode only.
    fs : float or None, default=None
        Frame rate in Hz of whole traces: set it for trace mode (see above);
        None fits windows.
    crop_seconds : float, default=8.0
        Trace mode: length of the crops the critic sees, in seconds (at most
        the longest training trace).
    trace_noise : {"residual", "white"}, default="residual"
        Trace mode: the generator's source of noise. ``"residual"`` gives it,
        in one of its noise channels, stretches of real residual noise: a
        training trace's fluorescence minus that trace's own least-squares
        spike response (its noise that is not white, drift and neuropil), in
        noise SDs, of the style being rendered. Frames near spikes, where the
        residual holds what a linear response misses (transients that would
        turn up away from any spike), are filled with noise of the spectrum of
        the trace's quiet frames between the levels on either side.
        Up to 2**17 frames of them are kept (``residual_bank_``) and saved
        with the model. The generator starts as the linear response plus that
        noise and learns from there. ``"white"``: Gaussian noise only, so all
        texture is learned.
    monitor : {"auto", "w_dist", "realism"}, default="auto"
        What early stopping watches. ``"w_dist"``: ``val_w_dist``, the
        critic's Wasserstein estimate on the validation windows or crops
        (only when ``validation_fraction > 0``). ``"realism"`` (trace mode):
        ``val_auc``, how well a fresh classifier tells traces from their
        rendering from their own spike trains
        (:func:`calgan_sklearn.evaluation.two_sample_auc`, lower is better):
        the validation traces, or without a validation part up to 32 random
        training traces. It is scored before training and after every epoch,
        and the weights with the lowest, possibly the starting ones, are kept
        (``best_epoch_``); ``partial_fit`` does not stop. Needs at least two
        traces to score. Adversarial training on a few neurons does not
        always make renderings more realistic; this keeps it from making them
        less (and stops it early). ``"auto"``: ``"realism"`` in trace mode
        (with at least two traces), ``"w_dist"`` for windows.
    {common_parameters}

    Attributes
    ----------
    generator_ : keras.Model
        ``noise (n, latent_dim)`` [+ ``condition (n, window_length, c)``] ->
        normalised windows ``(n, window_length, 1)``.
    critic_ : keras.Model
        The critic, ``(n, window_length, 1 + c)`` -> ``(n, 1)`` scores.
    model_ : ConditionalWGAN
        The training wrapper around both.
    conditioning_ : {"label", "spikes"} or None
        What ``y`` was in ``fit``.
    classes_ : ndarray of shape (n_classes,)
        Labels, when ``conditioning_ == "label"``.
    class_prior_ : ndarray of shape (n_classes,)
        Label frequencies, used to draw labels in :meth:`sample`.
    spike_bank_ : ndarray of shape (n_bank, window_length)
        Training spike trains (up to 1024) drawn from when sampling
        spike-conditioned windows without ``y``.
    history_ : dict of str to list of float
        Per-epoch ``d_loss``, ``g_loss``, ``gp`` and ``w_dist``.
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        Window length (trace mode: frames of the padded training array).
    trace_loc_, trace_scale_ : ndarray of shape (n_kept,)
        Trace mode: baseline and noise SD of up to 4096 training traces, the
        scales rendered traces are drawn from.
    noise_level_mean_, noise_level_std_ : float
        Trace mode: mean and SD (at least 0.5) of the training traces' log
        noise SD, which standardise the noise level the networks are told
        (clipped to +-3).
    spread_mean_, spread_std_ : float
        Trace mode: the same for the training traces' log activity spread.
    trace_spread_ : ndarray of shape (n_kept,)
        Trace mode: log activity spread of the kept training traces.
    styles_ : ndarray of shape (n_styles,) or None
        Trace mode: the ``style`` labels of ``fit`` (None when fitted without).
    trace_style_ : ndarray of shape (n_kept,) or None
        Trace mode: the style of each kept training trace.
    crop_length_ : int
        Trace mode: frames of the critic's crops.
    warmup_ : int
        Trace mode: frames of spike history (5 s) rendered before each crop.
    steps_per_epoch_ : int
        Trace mode: batches of crops per epoch.
    residual_bank_ : ndarray of shape (n_bank_frames,) or None
        Trace mode, ``trace_noise="residual"``: the kept residual noise of
        training traces (float32, noise SDs), one stretch per trace,
        concatenated (None with ``"white"``).
    residual_starts_ : ndarray of shape (n_stretches + 1,) or None
        Where each stretch of ``residual_bank_`` starts, and its end.
    residual_style_ : ndarray of shape (n_stretches,) or None
        Each stretch's style, an index into ``styles_`` (zeros without styles).
    gain_coef_ : ndarray of shape (3,)
        Trace mode: the weighted ridge fit of each training trace's log
        response gain (the scale of its style's median kernel that fits it
        best through the response curve) on its log activity spread and log
        firing rate (Hz, plus 0.01), then the intercept. Rendered traces get
        the gain it predicts from the spread of their ``like`` (or kept
        training) trace and the rate of the spikes rendered. Absent from GANs
        saved before it (no gain channel).
    gain_range_ : ndarray of shape (2,)
        Trace mode: the smallest and largest log gain it was fitted to; the
        predictions are clipped to it.
    n_kernels_ : int
        Trace mode: response kernels per style in the generator: up to 16 of
        the training neurons' own kernels (smooth fits of the power-law
        response, see ``response_curve_``), each divided by its gain and
        shrunk toward the style's median kernel by its spike count (half way
        at 50 spikes); each rendered trace takes one, picked by its latent
        code. 1 (the pooled linear kernel) for a style with fewer than three
        neurons of 10 spikes or more, and in GANs saved before the bank.
    response_curve_ : ndarray of shape (n_styles, 3)
        Trace mode: ``(a, p, vmax)`` of each style's response curve
        ``a min(v, vmax)**p`` (continued along its tangent above ``vmax``,
        ``a v`` below zero) applied to the scaled spike response ``v``:
        fluorescence as a power of a linear calcium response, so that single
        spikes give small, brief transients and bursts large, long ones. The
        exponent (1 to 3) is the one whose per-neuron fits leave the least
        squared residual; ``vmax`` is the 99.9th percentile of the fitted
        responses. In GANs saved before the power form (``curve_form_``
        absent), ``(a1, a2, vmax)`` of ``a1 v + a2 (min(max(v, 0),
        vmax)**2 + 2 vmax max(v - vmax, 0))``. Absent from GANs saved before
        the curve.
    curve_form_ : str
        Trace mode: ``"power"``, the form of ``response_curve_``.
    best_epoch_ : int
        Trace mode, stopping on realism (``monitor``): the epoch of the last
        ``fit`` whose weights were kept (0: the weights it started from).
    best_val_auc_ : float
        Their ``val_auc``.

    See Also
    --------
    SpikeClassifier : Classifier that can start from this GAN's critic.
    CalciumAutoencoder : Variational autoencoder, another generative model.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models import CalciumGAN
    >>> X = np.random.default_rng(0).normal(size=(64, 16))
    >>> gan = CalciumGAN(filters=4, latent_dim=4, depth=1, epochs=1, random_state=0).fit(X)
    >>> Xs, ys = gan.sample(3, random_state=0)
    >>> Xs.shape, ys
    ((3, 16), None)

    Trace mode renders spike trains of any length at ``fs``:

    >>> from calgan_sklearn.datasets import make_calcium
    >>> sim = make_calcium(n_neurons=2, duration=20.0, fs=30.0, random_state=0)
    >>> gan = CalciumGAN(fs=30.0, filters=4, latent_dim=2, depth=1, crop_seconds=2.0,
    ...                  epochs=1, batch_size=8, random_state=0).fit(sim.calcium, sim.spikes)
    >>> calcium, spikes = gan.sample(y=sim.spikes[:, :300], random_state=0)
    >>> calcium.shape
    (2, 300)
    """

    _keras_attributes = ("generator_", "critic_")
    _monitor = "val_w_dist"
    _training_backends = ("tensorflow", "jax")  # ConditionalWGAN's train steps

    _parameter_notes = {
        "learning_rate": "Both networks use it, with ``beta_1=0.5, beta_2=0.9``.",
        "validation_fraction": "``val_w_dist`` is the critic's Wasserstein estimate on the "
        "held-out windows, a rough convergence signal. In trace mode early stopping "
        "watches realism instead (``monitor``), on training traces when this is 0.",
        "patience": "In trace mode, epochs without a lower ``val_auc`` (``monitor``).",
    }

    _parameter_constraints = {
        **COMMON_PARAMETER_CONSTRAINTS,
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "filters": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_critic": [Interval(numbers.Integral, 1, None, closed="left")],
        "gp_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "normalize": NORMALIZE_CONSTRAINT,
        "fs": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "crop_seconds": [Interval(numbers.Real, 0, None, closed="neither")],
        "trace_noise": [StrOptions({"residual", "white"})],
        "monitor": [StrOptions({"auto", "w_dist", "realism"})],
    }

    def __init__(
        self,
        *,
        latent_dim=16,
        filters=16,
        kernel_size=5,
        depth=2,
        n_critic=2,
        gp_weight=10.0,
        normalize="noise",
        fs=None,
        crop_seconds=8.0,
        trace_noise="residual",
        monitor="auto",
        epochs=50,
        batch_size=64,
        learning_rate=5e-4,
        validation_fraction=0.0,
        patience=10,
        callbacks=None,
        verbose=0,
        random_state=None,
        warm_start=False,
        mixed_precision=False,
        jit_compile=False,
        distribute=False,
    ):
        self.latent_dim = latent_dim
        self.filters = filters
        self.kernel_size = kernel_size
        self.depth = depth
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.normalize = normalize
        self.fs = fs
        self.crop_seconds = crop_seconds
        self.trace_noise = trace_noise
        self.monitor = monitor
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state
        self.warm_start = warm_start
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self.distribute = distribute

    # ---------------------------------------------------------------- public
    def fit(self, X, y=None, style=None):
        """Train the GAN on windows ``X``, conditioned on ``y`` if given.

        Parameters
        ----------
        X : array-like of shape (n_windows, window_length) or (n_traces, n_frames)
            Fluorescence windows; in trace mode (``fs`` set), calcium traces at
            ``fs``, NaN-padded at the end.
        y : None, array-like of shape (n_windows,) or (n_windows, window_length)
            Nothing (unconditional), a label per window, or spike counts per
            frame of each window; in trace mode (required), spike counts per
            frame of each trace, the shape of ``X`` with the same padding.
        style : array-like of shape (n_traces,), default=None
            Trace mode only: a label per trace (e.g. its dataset or indicator).
            Both networks are told it (one-hot channels), so one GAN learns
            the kinetics, transient size and noise of each style, and
            ``sample(y=..., style=label)`` renders in that style. None: one
            style for all traces.

        Returns
        -------
        self : CalciumGAN
        """
        return self._fit(X, y, style=style)

    def partial_fit(self, X, y=None, style=None):
        """Train one more epoch (building the networks on the first call)."""
        return self._fit(X, y, partial=True, style=style)

    def sample(self, n_samples=1, y=None, random_state=None, like=None, style=None):
        """Generate windows (or, in trace mode, whole traces) in data units.

        Parameters
        ----------
        n_samples : int, default=1
            Number of windows; ignored when ``y`` is given (and in trace mode).
        y : array-like, default=None
            Conditions to render: labels ``(n,)`` or spike trains
            ``(n, window_length)``, as in ``fit``. ``None`` draws them from the
            training data (label frequencies / training spike trains). Trace
            mode (required): spike counts per frame ``(n_traces, n_frames)`` at
            ``fs``, NaN-padded at the end, any length.
        random_state : int, RandomState instance or None, default=None
            Seed of the noise, conditions and (baseline, noise level) draws.
        like : array-like of shape (n_traces, n_frames_like), default=None
            Trace mode only: calcium traces (no spikes needed, any length,
            NaN-padded) whose baseline and noise SD set those of the rendered
            trace of the same row; None takes those of random training traces
            (of the ``style``, when given).
        style : label or array-like of shape (n_traces,), default=None
            Trace mode, for a GAN fitted with ``style``: the style (one of
            ``styles_``) to render each trace in, one label for all or one
            per trace. Without ``like`` the baseline, noise SD and spread come
            from random training traces of that style too. None: each trace
            takes the style of the random training trace it is scaled like
            (with ``like``, a style must be given).

        Returns
        -------
        X : ndarray of shape (n, window_length) or (n_traces, n_frames)
            Generated windows; in trace mode, calcium NaN exactly where ``y``
            is NaN.
        y : ndarray of shape (n,) or (n, window_length), or None
            The conditions they follow (None if unconditional).
        """
        check_is_fitted(self)
        rng = check_random_state(random_state)
        if self.conditioning_ == "trains":
            return self._sample_traces(y, like, rng, style)
        if like is not None or style is not None:
            raise ValueError(
                "like= and style= set the style of whole traces; this CalciumGAN was "
                "fitted on windows (fs=None). Fit CalciumGAN(fs=...) on traces to use them."
            )
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        y = self._sample_conditions(n_samples, y, rng)
        n = n_samples if y is None else len(y)
        z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        inputs = z if y is None else [z, self._condition_array(y)]
        Z = self._predict_network(self.generator_, inputs)[..., 0]
        loc, scale = self._draw_loc_scale(n, rng)
        return self._unscale(Z, loc, scale), y

    def critic_score(self, X, y=None):
        """The critic's score of windows ``X`` (higher = more real-looking)."""
        check_is_fitted(self)
        if self.conditioning_ == "trains":
            raise ValueError(
                "critic_score scores windows; this CalciumGAN renders whole traces "
                "(fs set), whose critic sees crops inside fit only."
            )
        X, y = self._check_data(X, y, reset=False)
        x = self._scale(X)[0][..., None]
        if self.conditioning_ is not None:
            x = np.concatenate([x, self._condition_array(y)], axis=-1)
        return self._predict_network(self.critic_, x)[:, 0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.fs is not None  # NaN padding of whole traces
        return tags

    # ---------------------------------------------------------------- hooks
    def _check_data(self, X, y=None, *, reset):
        if self.fs is not None:
            return self._check_trace_data(X, y, reset=reset)
        if not reset and self.conditioning_ == "trains":
            raise ValueError(
                "this CalciumGAN was fitted on whole traces (fs set) but fs is now None; "
                "set fs again, or refit with warm_start=False."
            )
        try:
            return super()._check_data(X, y, reset=reset)
        except ValueError as exc:
            if "NaN" not in str(exc):
                raise
            raise ValueError(
                f"{exc} To fit whole NaN-padded traces with their spike trains, use trace "
                "mode: CalciumGAN(fs=<frame rate in Hz>)."
            ) from exc

    def _check_trace_data(self, X, y, *, reset):
        """Trace mode: NaN-padded traces and spike counts of the same shape."""
        fs = check_fs(self.fs)
        if y is None:
            raise ValueError(
                "CalciumGAN(fs=...) renders spike trains, so fit needs spike counts y of "
                "X's shape (n_traces, n_frames); got y=None. Fit windows with fs=None "
                "for an unconditional GAN."
            )
        if not reset and self.conditioning_ != "trains":
            raise ValueError(
                f"this CalciumGAN was fitted on windows (conditioning={self.conditioning_!r}) "
                "but fs is now set; refit with warm_start=False."
            )
        X = check_traces(X, min_frames=2)
        y = check_spikes(y, X)
        warn_implausible(X, fs, y=y)
        if reset:
            self.n_features_in_ = X.shape[1]
        return X, y

    def _check_y(self, y, X, *, reset):
        mode = self._conditioning_of(y)
        if not reset and mode != self.conditioning_:
            raise ValueError(
                f"this CalciumGAN was fitted with conditioning={self.conditioning_!r} but "
                f"y now means {mode!r}; pass the same kind of y, or refit with "
                "warm_start=False."
            )
        if y is None:
            return None
        if mode == "label":
            y = check_array(y, ensure_2d=False, dtype=None)
            check_consistent_length(X, y)
            if not reset:
                self._check_known_labels(y)
            return y
        return self._check_spike_windows(y, X.shape)

    @staticmethod
    def _conditioning_of(y):
        if y is None:
            return None
        return "spikes" if np.ndim(y) == 2 else "label"

    @staticmethod
    def _check_spike_windows(y, shape):
        y = check_array(y, dtype=np.float64, ensure_all_finite=True, input_name="y")
        if y.shape != tuple(shape):
            raise ValueError(
                f"spike windows y have shape {y.shape} but X has shape {tuple(shape)}; "
                "conditioning on spikes needs one spike count per frame of each window "
                "(make_windows(..., target='subwindow'))."
            )
        if (y < 0).any():
            raise ValueError("spike windows y must be non-negative spike counts.")
        return y

    def _check_params(self, X):
        if self.monitor != "realism":
            return
        if self.fs is None:
            raise ValueError(
                "monitor='realism' scores renderings of whole traces; set fs (trace mode) "
                "or use monitor='w_dist' for windows."
            )
        n_val = math.ceil(self.validation_fraction * len(X))
        if self.validation_fraction > 0 and n_val < 2:
            raise ValueError(
                f"monitor='realism' tells validation traces from their renderings, which "
                f"needs at least 2 of them; validation_fraction={self.validation_fraction} "
                f"holds out {n_val} of {len(X)} traces. Raise validation_fraction (e.g. "
                "0.2), pass more traces, or use validation_fraction=0 (scores training traces)."
            )
        if len(X) < 2:
            raise ValueError(
                "monitor='realism' tells traces from their renderings, which needs at least 2 "
                f"traces; got {len(X)}. Pass more traces or use monitor='w_dist'."
            )

    def _check_fit_params(self, X, y, *, reset, style=None):
        """``style``: one label per trace, trace mode only, known labels when training on."""
        fitted_styles = None if reset else getattr(self, "styles_", None)
        if style is None:
            if fitted_styles is not None:
                raise ValueError(
                    f"this CalciumGAN was fitted with style labels {fitted_styles.tolist()}; "
                    "pass style= (one label per trace) when training it further too."
                )
            return {}
        if self.fs is None:
            raise ValueError(
                "style= labels whole traces; this CalciumGAN fits windows (fs=None). Set "
                "fs for trace mode, or condition windows on labels with y instead."
            )
        style = np.asarray(style)
        if style.ndim != 1 or len(style) != len(X):
            raise ValueError(
                f"style must hold one label per trace, shape ({len(X)},); got shape {style.shape}."
            )
        if not reset:
            if fitted_styles is None:
                raise ValueError(
                    "this CalciumGAN was fitted without style labels; refit it "
                    "(warm_start=False) to learn styles."
                )
            self._check_known_styles(style)
        return {"style": style}

    def _check_known_styles(self, style):
        _check_known(style, self.styles_, "style", "knows the styles")

    def _style_channels(self, style, n):
        """One-hot style channels ``(n, n_styles)`` of ``n`` traces (``(n, 0)`` without styles)."""
        styles = getattr(self, "styles_", None)
        if styles is None:
            return np.zeros((n, 0), np.float32)
        return (np.asarray(style)[:, None] == styles[None, :]).astype(np.float32)

    def _n_trace_cond(self):
        """Condition channels of the trace networks: spikes, two levels, the log gain
        (GANs fitted since it was added), the styles."""
        styles = getattr(self, "styles_", None)
        return _COND_CHANNELS + self._has_gain() + (0 if styles is None else len(styles))

    def _has_gain(self):
        return getattr(self, "gain_coef_", None) is not None

    def _learn_data(self, X, y, style=None):
        if self.fs is not None:
            return self._learn_traces(X, y, style)
        self._fit_scaling(X)
        self.conditioning_ = self._conditioning_of(y)
        if self.conditioning_ == "label":
            self.classes_, counts = np.unique(y, return_counts=True)
            self.class_prior_ = counts / counts.sum()
        elif self.conditioning_ == "spikes":
            keep = check_random_state(self._seed).permutation(len(y))[:_BANK_SIZE]
            self.spike_bank_ = y[keep]

    def _n_cond_channels(self):
        return {None: 0, "spikes": 1}.get(self.conditioning_, len(getattr(self, "classes_", [])))

    def _condition_array(self, y):
        """Condition channels ``(n, window_length, c)`` for labels or spike windows."""
        if self.conditioning_ == "label":
            onehot = (np.asarray(y)[:, None] == self.classes_[None, :]).astype(np.float32)
            return np.repeat(onehot[:, None, :], self.n_features_in_, axis=1)
        return np.asarray(y, dtype=np.float32)[..., None]

    def _learn_traces(self, X, y, style=None):
        """Trace mode: per-trace scales, crop sizes and the linear spike response."""
        fs = check_fs(self.fs)
        lengths = trace_lengths(X)
        loc, scale = _trace_stats(X)
        log_noise = np.log(scale)
        self.noise_level_mean_ = float(log_noise.mean())
        # at least 0.5 (noise SDs a factor 1.6 apart are one unit apart), so the
        # levels of traces unlike the training ones stay near the range seen
        self.noise_level_std_ = max(float(log_noise.std()), _MIN_LEVEL_STD)
        spread = _trace_spread(X, loc, scale)
        self.spread_mean_ = float(spread.mean())
        self.spread_std_ = max(float(spread.std()), _MIN_LEVEL_STD)
        keep = check_random_state(self._seed).permutation(len(X))[:_MAX_KEPT_TRACES]
        self.styles_ = self.trace_style_ = None
        if style is not None:
            self.styles_ = np.unique(style)
            # every style keeps traces to draw scales from
            missing = np.setdiff1d(self.styles_, style[keep])
            keep = np.concatenate([keep, [np.flatnonzero(style == m)[0] for m in missing]])
            keep = keep.astype(int)
            self.trace_style_ = style[keep]
        self.trace_loc_, self.trace_scale_ = loc[keep], scale[keep]
        self.trace_spread_ = spread[keep]
        self.crop_length_ = int(min(max(round(self.crop_seconds * fs), 2), lengths.max()))
        self.warmup_ = max(int(round(_CONTEXT_SECONDS * fs)), 1)
        self.steps_per_epoch_ = max(
            int(math.ceil(lengths.sum() / (self.crop_length_ * self.batch_size))), 1
        )
        Z, S = self._normalised_traces(X, y, loc, scale)
        self.conditioning_ = "trains"
        # one power-law model per style: its own kinetics, transient size and
        # growth with bursts from the start, and a bank of its neurons' own kernels
        groups = self._style_groups(style, len(Z))
        own = _own_kernels(Z, S, self.warmup_)
        rng = check_random_state(self._seed)
        fits = [
            _style_response(*([v[i] for i in r] for v in (Z, S, own)), self.warmup_, rng)
            for r in (np.flatnonzero(groups == g) for g in range(groups.max() + 1))
        ]
        response = np.stack([f[0] for f in fits], axis=1)
        offset = np.array([f[1] for f in fits])
        self.n_kernels_ = max(len(f[2]) for f in fits)
        self.response_curve_ = np.stack([f[3] for f in fits])
        self.curve_form_ = "power"
        # (lags, n_styles * n_kernels), style-major; short banks repeat
        bank = np.stack(
            [f[2][j % len(f[2])] for f in fits for j in range(self.n_kernels_)], axis=1
        )
        # each trace's transient size relative to its style's response, and what
        # its spread and firing rate (known when sampling) say of it
        gains = _power_gains(Z, S, response.T[groups], self.response_curve_[groups, 1])
        counts = np.array([float(s.sum()) for s in S])
        self.gain_coef_, self.gain_range_ = _fit_gain(
            _gain_features(spread, _spike_rate(S, fs)), gains, counts
        )
        self.residual_bank_ = self.residual_starts_ = self.residual_style_ = None
        if self.trace_noise == "residual":
            self.residual_bank_, self.residual_starts_, self.residual_style_ = _residual_bank(
                Z,
                S,
                own,
                groups,
                [f[4] for f in fits],
                self.warmup_ + self.crop_length_,
                max(int(round(_SPECTRUM_SECONDS * fs / 2)) * 2, 8),
                check_random_state(self._seed),
            )
        return {"response": bank, "offset": offset}

    def _style_groups(self, style, n):
        """Index of each of ``n`` traces' style in ``styles_`` (zeros without styles)."""
        if style is None or getattr(self, "styles_", None) is None:
            return np.zeros(n, dtype=np.int64)
        return np.searchsorted(self.styles_, np.asarray(style)).astype(np.int64)

    def _residual_noise(self, groups, length, rng):
        """Residual stretches ``(len(groups), length)`` of the styles ``groups``, or None
        for white noise (``trace_noise="white"``, or a GAN saved before residuals)."""
        if getattr(self, "residual_bank_", None) is None:
            return None
        return _residual_stretches(
            self.residual_bank_,
            self.residual_starts_,
            self.residual_style_,
            groups,
            length,
            rng,
        )

    def _normalised_traces(self, X, y, loc, scale):
        """Unpadded calcium normalised by ``loc`` and ``scale`` (:func:`_trace_stats`) and
        spike counts of each trace (float32)."""
        lengths = trace_lengths(X)
        Z = [((X[i, :n] - loc[i]) / scale[i]).astype(np.float32) for i, n in enumerate(lengths)]
        S = [np.nan_to_num(y[i, :n]).astype(np.float32) for i, n in enumerate(lengths)]
        return Z, S

    def _noise_level(self, scale, spread, rate):
        """The level channels of the networks, ``(n_traces, 2 or 3)``: standardised log
        noise SD and log spread, then (GANs fitted since it was added) the log
        response gain predicted from the spread and ``rate``, the firing rate (Hz)
        of the spikes rendered or trained on (:meth:`_log_gain`)."""
        levels = np.stack(
            [
                (np.log(scale) - self.noise_level_mean_) / self.noise_level_std_,
                (spread - self.spread_mean_) / self.spread_std_,
            ],
            axis=1,
        )
        levels = np.clip(levels, -_MAX_LEVEL, _MAX_LEVEL)
        if self._has_gain():
            levels = np.column_stack([levels, self._log_gain(spread, rate)])
        return levels.astype(np.float32)

    def _log_gain(self, spread, rate):
        """Predicted log scale of each trace's transients relative to its style's linear
        response: a fit (in ``fit``) of the training traces' own scales on their
        log spread and log firing rate, clipped to the range of those scales."""
        log_g = _gain_features(spread, rate) @ self.gain_coef_[:-1] + self.gain_coef_[-1]
        return np.clip(log_g, *self.gain_range_)

    def _build_model(self, response=None, offset=None):
        if self.conditioning_ == "trains":
            return self._build_trace_model(response, offset)
        arch = dict(
            filters=self.filters,
            kernel_size=self.kernel_size,
            depth=self.depth,
            dtype=self._dtype_policy(),
        )
        c = self._n_cond_channels()
        self.generator_ = build_generator(self.n_features_in_, self.latent_dim, c, **arch)
        self.critic_ = build_critic(self.n_features_in_, c, **arch)
        return self._assemble_model()

    def _build_trace_model(self, response, offset):
        """Trace generator and crop critic; the generator starts as the linear model."""
        dtype = self._dtype_policy()
        n_cond = self._n_trace_cond()
        self.generator_ = build_trace_generator(
            _NOISE_CHANNELS,
            self.latent_dim,
            filters=self.filters,
            kernel_size=self.kernel_size,
            n_dilated=n_dilated_layers(self.warmup_, self.kernel_size),
            response_length=self.warmup_,
            slow_frames=max(int(round(_SLOW_SECONDS * check_fs(self.fs))), 1),
            n_cond=n_cond,
            n_styles=n_cond - _COND_CHANNELS - self._has_gain(),
            n_kernels=getattr(self, "n_kernels_", 1),  # 1 in GANs saved before the bank
            curve=getattr(self, "response_curve_", None) is not None,
            # quadratic in GANs saved before the power form
            curve_form=getattr(self, "curve_form_", "quadratic"),
            dtype=dtype,
        )
        self.critic_ = build_critic(
            self.crop_length_,
            n_cond,
            filters=self.filters,
            kernel_size=self.kernel_size,
            depth=self.depth,
            dtype=dtype,
        )
        offset = None if offset is None else np.atleast_1d(offset)
        if response is not None:
            # kernel (taps, in, out), one output per style; a causal conv's last
            # tap is the current frame
            self.generator_.get_layer("gen_response").set_weights(
                [response[::-1, None, :].astype(np.float32)]
            )
        if getattr(self, "response_curve_", None) is not None:
            self.generator_.get_layer("gen_curve").set_weights(
                [self.response_curve_.astype(np.float32)]
            )
        if self._has_gain():
            # the per-trace gain starts as exp(the predicted log gain channel)
            gain = self.generator_.get_layer("gen_gain")
            weights = np.zeros_like(gain.get_weights()[0])
            weights[self.latent_dim + 2, 0] = 1.0  # code, then noise level, spread, gain
            gain.set_weights([weights, np.zeros(1, np.float32)])
        skip = self.generator_.get_layer("gen_skip")
        kernel = np.zeros_like(skip.get_weights()[0])
        # the residual noise (last noise channel) or the first white-noise channel
        kernel[0, n_cond + (_NOISE_CHANNELS - 1 if self._residual_noise_on() else 0), 0] = 1.0
        bias = np.zeros(1, np.float32)
        if offset is not None and len(offset) > 1:
            kernel[0, n_cond - len(offset) : n_cond, 0] = offset  # the style channels
        elif offset is not None:
            bias[0] = offset[0]
        skip.set_weights([kernel, bias])
        return self._assemble_model()

    def _assemble_model(self):
        if self.conditioning_ == "trains":
            return TraceWGAN(
                self.generator_,
                self.critic_,
                self.latent_dim,
                _NOISE_CHANNELS,
                self.warmup_,
                residual_noise=self._residual_noise_on(),
                n_critic=self.n_critic,
                gp_weight=self.gp_weight,
                seed=self._seed,
            )
        return ConditionalWGAN(
            self.generator_,
            self.critic_,
            self.latent_dim,
            n_critic=self.n_critic,
            gp_weight=self.gp_weight,
            seed=self._seed,
        )

    def _make_callbacks(self, train, val, *, partial=False):
        if partial or self.monitor == "w_dist" or self.fs is None:
            return super()._make_callbacks(train, val, partial=partial)
        data = val
        if val is None:
            # no validation part: a fixed random subset of the training traces
            rows = check_random_state(self._seed).permutation(len(train[0]))
            rows = np.sort(rows[:_REALISM_TRACES])
            X, y, params = train
            data = (X[rows], y[rows], _check_method_params(X, params, indices=rows))
        if _realism_crop(data[0], self.fs) is None:
            if self.monitor == "realism":
                raise ValueError(
                    "monitor='realism' scores crops of at least 8 frames of two traces; the "
                    f"traces it would score (the {'validation' if val is not None else 'training'}"
                    " part) have fewer. Pass longer traces or use monitor='w_dist'."
                )
            return super()._make_callbacks(train, val, partial=partial)  # "auto"
        return [*(self.callbacks or []), _RealismStopping(self, data, self.patience)]

    def _residual_noise_on(self):
        return getattr(self, "residual_bank_", None) is not None

    def _compile_model(self, model):
        model.compile(
            d_optimizer=self._make_optimizer(beta_1=0.5, beta_2=0.9),
            g_optimizer=self._make_optimizer(beta_1=0.5, beta_2=0.9),
            jit_compile=self._jit_compile(),
        )

    def _stratify_labels(self, y):
        return y if self.conditioning_ == "label" else None

    def _make_dataset(self, X, y, *, training, seed=None, style=None, **fit_params):
        if self.conditioning_ != "trains":
            return super()._make_dataset(X, y, training=training, seed=seed, **fit_params)
        loc, scale = _trace_stats(X)
        Z, S = self._normalised_traces(X, y, loc, scale)
        if max(len(z) for z in Z) < self.crop_length_:
            raise ValueError(
                f"every trace of the {'training' if training else 'validation'} part is "
                f"shorter than the critic's crops ({self.crop_length_} frames); lower "
                "crop_seconds or validation_fraction."
            )
        steps = self.steps_per_epoch_
        if not training:
            frames = sum(len(z) for z in Z)
            steps = max(int(math.ceil(frames / (self.crop_length_ * self.batch_size))), 1)
        residual = None
        if self._residual_noise_on():
            groups = self._style_groups(style, len(X))

            def residual(rng, rows, frames):
                return self._residual_noise(groups[rows], frames, rng)

        return _TraceCrops(
            Z,
            S,
            np.concatenate(
                [
                    self._noise_level(
                        scale, _trace_spread(X, loc, scale), _spike_rate(S, check_fs(self.fs))
                    ),
                    self._style_channels(style, len(X)),
                ],
                axis=1,
            ),
            crop=self.crop_length_,
            warmup=self.warmup_,
            batch_size=self.batch_size,
            steps=steps,
            augment=training,
            seed=0 if seed is None else seed,
            residual=residual,
        )

    def _sample_traces(self, y, like, rng, style=None):
        """Trace mode of :meth:`sample`: render spike trains ``y`` in data units."""
        if y is None:
            raise ValueError(
                "this CalciumGAN renders given spike trains (fs set): call "
                "sample(y=spikes) with spike counts of shape (n_traces, n_frames)."
            )
        y = check_spikes(y, name="y")
        n, T = y.shape
        style = self._check_sample_style(style, n, like)
        if like is None:
            if style is None:
                idx = rng.randint(len(self.trace_loc_), size=n)
                if getattr(self, "trace_style_", None) is not None:
                    style = self.trace_style_[idx]
            else:
                # a random kept training trace of each trace's style
                idx = np.empty(n, dtype=int)
                for label in np.unique(style):
                    rows = np.flatnonzero(style == label)
                    pool = np.flatnonzero(self.trace_style_ == label)
                    idx[rows] = pool[rng.randint(len(pool), size=len(rows))]
            loc, scale = self.trace_loc_[idx], self.trace_scale_[idx]
            spread = self.trace_spread_[idx]
        else:
            like = check_traces(like, name="like", min_frames=2)
            if len(like) != n:
                raise ValueError(
                    f"like has {len(like)} traces but y has {n}; like needs one calcium "
                    "trace per spike train, whose baseline and noise set its scale."
                )
            loc, scale = _trace_stats(like)
            spread = _trace_spread(like, loc, scale)
        # style is None only for a GAN fitted without styles (no style channels)
        level = np.concatenate(
            [
                self._noise_level(scale, spread, _spike_rate(unpad_traces(y), check_fs(self.fs))),
                self._style_channels(style, n),
            ],
            axis=1,
        )
        n_cond = self._n_trace_cond()
        groups = self._style_groups(style, n)
        # its own stream, so white-noise GANs draw the same noise as before residuals
        residual_rng = None
        if self._residual_noise_on():
            residual_rng = np.random.default_rng(rng.randint(2**31 - 1))
        out = np.empty((n, T))
        step = max(_SAMPLE_FRAMES // T, 1)
        for a in range(0, n, step):
            m = len(range(a, min(a + step, n)))
            cond = np.empty((m, T, n_cond), np.float32)
            cond[..., 0] = np.nan_to_num(y[a : a + m])
            cond[..., 1:] = level[a : a + m, None, :]
            noise = rng.standard_normal((m, T, _NOISE_CHANNELS)).astype(np.float32)
            residual = self._residual_noise(groups[a : a + m], T, residual_rng)
            if residual is not None:
                noise[..., -1] = residual
            code = rng.standard_normal((m, 1, self.latent_dim)).astype(np.float32)
            code = np.repeat(code, T, axis=1)
            Z = self._predict_network(self.generator_, [cond, noise, code], batch_size=m)
            out[a : a + m] = Z[..., 0] * scale[a : a + m, None] + loc[a : a + m, None]
        out[np.isnan(y)] = np.nan
        return out, y

    def _check_sample_style(self, style, n, like):
        """``style`` of :meth:`sample`: None, or one known label per trace."""
        styles = getattr(self, "styles_", None)
        if style is None:
            if styles is not None and like is not None:
                raise ValueError(
                    "like= sets the scale but not the kinetics of the rendering; this "
                    f"CalciumGAN was fitted with styles {styles.tolist()}: pass style= too."
                )
            return None
        if styles is None:
            raise ValueError(
                "this CalciumGAN was fitted without style labels; fit it with "
                "style=labels (one per trace) to render by style, or use like=."
            )
        style = np.asarray(style)
        if style.ndim == 0:
            style = np.repeat(style, n)
        if style.ndim != 1 or len(style) != n:
            raise ValueError(
                f"style must be one label or one per spike train ({n}); got shape {style.shape}."
            )
        self._check_known_styles(style)
        return style

    def _network_arrays(self, X, y):
        x = self._scale(X)[0][..., None]
        return (x,) if y is None else (x, self._condition_array(y))

    def _sample_conditions(self, n_samples, y, rng):
        if self.conditioning_ is None:
            if y is not None:
                raise ValueError("this CalciumGAN was fitted without y; sample it with y=None.")
            return None
        if y is None:
            if self.conditioning_ == "label":
                return self.classes_[
                    rng.choice(len(self.classes_), n_samples, p=self.class_prior_)
                ]
            return self.spike_bank_[rng.randint(len(self.spike_bank_), size=n_samples)]
        if self.conditioning_ == "spikes":
            y = np.atleast_2d(np.asarray(y, dtype=np.float64))
            return self._check_spike_windows(y, (len(y), self.n_features_in_))
        y = np.atleast_1d(np.asarray(y))
        self._check_known_labels(y)
        return y

    def _check_known_labels(self, y):
        _check_known(y, self.classes_, "y", "was fitted on")

    def _restore_model(self):
        if not hasattr(self, "_seed"):
            self._seed = 0
        super()._restore_model()
