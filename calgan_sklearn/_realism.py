"""How realistic are synthetic calcium traces? Measures independent of the generator.

A generator is any callable that renders spike trains (counts per frame,
NaN-padded) into calcium of the same shape. It is judged on held-out neurons,
whose real spike trains it renders, against their real fluorescence:

- :func:`two_sample_auc`: a fresh, cross-validated gradient-boosting classifier
  tells real from rendered crops of a few seconds; ROC AUC 0.5 means
  indistinguishable, 1.0 trivially told apart;
- :func:`sta_error`: the spike-triggered average around isolated spikes;
- :func:`spectrum_distance`: the mean log power spectrum;
- :func:`tstr_score`: train on synthetic, test on real, against train on real;
- :func:`realism_report`: all of these for several generators and two
  references in one table: the package's simulator
  (:func:`calgan_sklearn.datasets.render_calcium`) matched to each trace's
  amplitude and noise, and white noise of the trace's noise SD on its baseline;
- :func:`plot_realism`: a figure of real and rendered traces of the same spike
  trains side by side, with both spike-triggered averages and spectra.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.signal import lfilter, welch
from scipy.stats import kurtosis, skew
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from sklearn.utils import Bunch, check_random_state
from threadpoolctl import threadpool_limits

from ._validation import check_fs, check_spikes, check_traces
from .signal import map_traces, noise_sd, rolling_baseline, trace_lengths

__all__ = [
    "two_sample_auc",
    "sta_error",
    "spectrum_distance",
    "realism_report",
    "tstr_score",
    "split_neurons",
    "reference_generators",
    "plot_realism",
    "REFERENCES",
]

#: Names of the two reference generators in :func:`realism_report`.
REFERENCES = ("simulator", "matched noise")

# time constants (s) of the exponential spike filters the paired features use
_SPIKE_TAUS = (0.1, 0.3, 1.0, 3.0)
_PERCENTILES = (1, 5, 25, 75, 95, 99)


# --------------------------------------------------------------------------- #
# Checks
# --------------------------------------------------------------------------- #
def _check_same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; both must be "
            "(n_traces, n_frames) with the same traces (render the same spike trains)."
        )


def _check_set(X, name):
    return check_traces(X, name=name, min_frames=2)


# --------------------------------------------------------------------------- #
# Two-sample classifier
# --------------------------------------------------------------------------- #
def _spike_filters(s, fs):
    """The spike train through causal exponentials of :data:`_SPIKE_TAUS`."""
    return [lfilter([1.0], [1.0, -np.exp(-1.0 / (tau * fs))], s) for tau in _SPIKE_TAUS]


def _crops(X, fs, n, scale, spikes=None):
    """Non-overlapping crops of ``n`` frames: values, owner trace, filtered spikes."""
    values, owner, filtered = [], [], []
    for i, length in enumerate(trace_lengths(X)):
        k = length // n
        if k == 0:
            continue
        x = X[i, : k * n]
        if scale == "noise":
            x = x / noise_sd(X[i, :length])
        values.append(x.reshape(k, n))
        owner.append(np.full(k, i))
        if spikes is not None:
            f = _spike_filters(np.nan_to_num(spikes[i, :length]), fs)
            filtered.append(np.stack([g[: k * n].reshape(k, n) for g in f], axis=1))
    if not values:
        return None
    spikes_out = np.concatenate(filtered) if filtered else None
    return np.concatenate(values), np.concatenate(owner), spikes_out


def _crop_features(C, fs, filtered=None):
    """Offset-free summary features of each crop (rows of ``C``)."""
    C = C - np.median(C, axis=1, keepdims=True)
    n = C.shape[1]
    d = np.diff(C, axis=1)
    feats = [
        np.percentile(C, _PERCENTILES, axis=1).T,
        np.percentile(d, _PERCENTILES, axis=1).T,
        np.log(np.maximum(noise_sd(C), 1e-12))[:, None],
        C.std(axis=1)[:, None],
        d.std(axis=1)[:, None],
        np.nan_to_num(skew(C, axis=1))[:, None],
        np.nan_to_num(kurtosis(C, axis=1))[:, None],
    ]
    centred = C - C.mean(axis=1, keepdims=True)
    var = np.maximum((centred**2).sum(axis=1), 1e-12)
    lags = sorted({max(1, int(round(t * fs))) for t in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)})
    acf = [(centred[:, lag:] * centred[:, :-lag]).sum(axis=1) / var for lag in lags if lag < n]
    feats.append(np.stack(acf, axis=1))
    power = np.abs(np.fft.rfft(centred, axis=1))[:, 1:] ** 2
    edges = np.unique(np.geomspace(1, power.shape[1], 9).astype(int))
    bands = [power[:, a - 1 : b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:])]
    feats.append(np.log10(np.stack(bands, axis=1) + 1e-12))
    if filtered is not None:
        feats.append(_paired_features(centred, filtered))
    return np.hstack(feats)


def _paired_features(centred, filtered):
    """Spike count, and the correlation and gain of each filtered spike train."""
    out = [np.log1p(filtered[:, 0].sum(axis=1))[:, None]]
    for j in range(filtered.shape[1]):
        k = filtered[:, j] - filtered[:, j].mean(axis=1, keepdims=True)
        kk = (k**2).sum(axis=1)
        ck = (centred * k).sum(axis=1)
        cc = (centred**2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            has = kk > 1e-12
            corr = np.where(has, ck / np.sqrt(kk * np.maximum(cc, 1e-12)), np.nan)
            gain = np.where(has, ck / kk, np.nan)
        out += [corr[:, None], gain[:, None]]
    return np.hstack(out)


def two_sample_auc(
    real,
    synthetic,
    fs,
    *,
    spikes=None,
    groups=None,
    crop_seconds=5.0,
    scale="noise",
    cv=5,
    random_state=0,
):
    """Cross-validated ROC AUC of a classifier telling real from synthetic crops.

    Both sets are cut into non-overlapping crops of ``crop_seconds``; each crop
    is described by offset-free summary features (percentiles of its values
    and of its frame-to-frame steps, noise, spread, skewness, kurtosis,
    autocorrelation up to 2 s, log power in eight frequency bands) and, with
    ``spikes``, by paired features (spike count; correlation and gain between
    the fluorescence and the spike train through exponentials of 0.1-3 s), so
    the classifier sees (fluorescence, spikes) pairs as a critic does. A fresh
    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` is scored by
    :class:`~sklearn.model_selection.StratifiedGroupKFold`: all crops of one
    trace (and, when the sets are paired, of its synthetic twin) stay in one
    fold, so the classifier cannot recognise a neuron it has seen.

    Summary features rather than raw crops: transients fall anywhere in a
    crop, so sorted values (percentiles), autocorrelation and band power
    describe a crop without the classifier having to learn shift invariance
    from a few hundred crops.

    Parameters
    ----------
    real, synthetic : array-like of shape (n_traces, n_frames)
        Traces, NaN-padded at the end. The sets are *paired* when they have the
        same shape (synthetic trace ``i`` rendered from the spikes of real
        trace ``i``).
    fs : float
        Frame rate in Hz.
    spikes : array-like of shape (n_traces, n_frames), default=None
        Spike counts both sets share (paired sets only); adds paired features.
    groups : array-like of shape (n_traces,), default=None
        Group of each real trace (e.g. the ``neuron`` labels, so that trials of
        one neuron stay together); default one group per trace. Paired
        synthetic traces share their real twin's group.
    crop_seconds : float, default=5.0
        Crop length in seconds (several transients of slow indicators).
    scale : {"noise", None}, default="noise"
        ``"noise"`` divides each trace by its noise SD
        (:func:`calgan_sklearn.signal.noise_sd`), so that crops are compared in
        units of signal-to-noise: dF/F amplitudes differ several-fold between
        neurons of one dataset, and a generator is asked to get the shape and
        the signal-to-noise ratio right. ``None`` compares data units.
    cv : int, default=5
        Number of folds (fewer when there are fewer groups).
    random_state : int, default=0
        Seed of the fold shuffling and of the classifier.

    Returns
    -------
    auc : float
        Mean ROC AUC over the folds: 0.5 for indistinguishable sets, 1.0 for
        sets told apart without error.

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import two_sample_auc
    >>> sim = make_calcium(n_neurons=8, duration=30.0, fs=30.0, random_state=0)
    >>> a, b = sim.calcium[:4], sim.calcium[4:]
    >>> bool(two_sample_auc(a, b, sim.fs, cv=2) < 0.8)
    True
    """
    fs = check_fs(fs)
    real, synthetic = _check_set(real, "real"), _check_set(synthetic, "synthetic")
    paired = real.shape == synthetic.shape
    if spikes is not None:
        _check_same_shape(real, synthetic, "real", "synthetic")
        spikes = check_spikes(spikes, real, calcium_name="real")
    if scale not in ("noise", None):
        raise ValueError(f"scale must be 'noise' or None, got {scale!r}.")
    n = int(round(check_fs(crop_seconds, "crop_seconds") * fs))
    if n < 8:
        raise ValueError(f"crop_seconds={crop_seconds} at fs={fs:g} Hz gives {n} frames; need 8+.")
    groups = np.arange(len(real)) if groups is None else np.asarray(groups)
    if len(groups) != len(real):
        raise ValueError(f"groups has {len(groups)} labels for {len(real)} real traces.")
    codes = np.unique(groups, return_inverse=True)[1].ravel()
    parts = []
    for X, label in ((real, 0), (synthetic, 1)):
        got = _crops(X, fs, n, scale, spikes)
        if got is None:
            longest = int(trace_lengths(X).max())
            name = "real" if label == 0 else "synthetic"
            raise ValueError(
                f"every {name} trace is shorter than one crop of {crop_seconds:g} s ({n} frames "
                f"at fs={fs:g}; longest trace: {longest} frames); use a shorter crop_seconds."
            )
        C, owner, filtered = got
        g = codes[owner] if (label == 0 or paired) else codes.max() + 1 + owner
        parts.append((_crop_features(C, fs, filtered), np.full(len(C), label), g))
    F, y, g = (np.concatenate(p) for p in zip(*parts))
    n_splits = min(int(cv), len(np.unique(g[y == 0])), len(np.unique(g[y == 1])))
    if n_splits < 2:
        raise ValueError(
            "two_sample_auc needs crops from at least 2 groups (traces or neurons) in each "
            f"set for cross-validation; got {len(np.unique(g[y == 0]))} real and "
            f"{len(np.unique(g[y == 1]))} synthetic."
        )
    clf = HistGradientBoostingClassifier(random_state=random_state)
    splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=random_state)
    # a few thousand crops of ~40 features: OpenMP threads cost more than they
    # save (60x slower on a busy 2-core machine), so the classifier runs on one
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_score(clf, F, y, groups=g, cv=splitter, scoring="roc_auc")
    return float(np.mean(scores))


# --------------------------------------------------------------------------- #
# Spike-triggered average and spectrum
# --------------------------------------------------------------------------- #
def _isolated_segments(X, spikes, pre, post, isolation):
    """Baseline-subtracted segments of ``X`` around spike frames with no other spike near."""
    segments = []
    offsets = np.arange(-pre, post)
    for i, length in enumerate(trace_lengths(spikes)):
        s = np.nan_to_num(spikes[i, :length])
        frames = np.flatnonzero(s > 0)
        if not len(frames):
            continue
        gap_before = np.diff(frames, prepend=-np.inf)
        gap_after = np.diff(frames, append=np.inf)
        keep = (gap_before > isolation) & (gap_after > isolation)
        keep &= (frames >= pre) & (frames + post <= length)
        seg = X[i, frames[keep][:, None] + offsets[None, :]]
        segments.append(seg)
    if not segments:
        return np.empty((0, pre + post))
    seg = np.concatenate(segments)
    base = seg[:, :pre].mean(axis=1, keepdims=True) if pre else seg[:, :1]
    return seg - base


def sta_error(
    calcium_real,
    calcium_synth,
    spikes,
    fs,
    window=(-0.5, 3.0),
    *,
    isolation=1.0,
    min_spikes=5,
    return_sta=False,
):
    """Relative L2 error between real and synthetic spike-triggered averages.

    Around every isolated spike frame (no other spike frame within
    ``isolation`` seconds before or after it), the fluorescence from
    ``window[0]`` to ``window[1]`` seconds is cut, its pre-spike mean
    subtracted, and averaged over all traces.

    Parameters
    ----------
    calcium_real, calcium_synth : array-like of shape (n_traces, n_frames)
        Real traces and the synthetic traces rendered from their spikes.
    spikes : array-like of shape (n_traces, n_frames)
        The spike counts both share.
    fs : float
        Frame rate in Hz.
    window : (float, float), default=(-0.5, 3.0)
        Start (<= 0) and end (> 0) of the average, in seconds around the spike.
    isolation : float, default=1.0
        Seconds without another spike frame on either side of a spike used.
    min_spikes : int, default=5
        Fewest isolated spikes accepted.
    return_sta : bool, default=False
        Also return the time axis and both averages (for a figure).

    Returns
    -------
    error : float
        ``||sta_synth - sta_real|| / ||sta_real||``; 0 for identical sets.
    t, sta_real, sta_synth : ndarray of shape (n_lags,)
        Only with ``return_sta=True``.

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import sta_error
    >>> sim = make_calcium(n_neurons=3, duration=60.0, fs=30.0, firing_rate=0.3, random_state=0)
    >>> sta_error(sim.calcium, sim.calcium, sim.spikes, sim.fs)
    0.0
    """
    fs = check_fs(fs)
    real = _check_set(calcium_real, "calcium_real")
    synth = _check_set(calcium_synth, "calcium_synth")
    _check_same_shape(real, synth, "calcium_real", "calcium_synth")
    spikes = check_spikes(spikes, real, calcium_name="calcium_real")
    start, stop = (float(w) for w in window)
    if not start <= 0 < stop:
        raise ValueError(f"window must be (start <= 0, end > 0) in seconds, got {window!r}.")
    pre, post = int(round(-start * fs)), int(round(stop * fs))
    if np.isnan(synth).any() and (np.isnan(synth) != np.isnan(real)).any():
        raise ValueError("calcium_synth must be NaN exactly where calcium_real is (its padding).")
    gap = max(int(round(isolation * fs)), 1)
    seg_real = _isolated_segments(real, spikes, pre, post, gap)
    if len(seg_real) < min_spikes:
        raise ValueError(
            f"found {len(seg_real)} isolated spikes (no other spike within {isolation:g} s, "
            f"the window {window!r} s inside the trace); at least {min_spikes} are needed. "
            "Use a shorter window or isolation, or more traces."
        )
    seg_synth = _isolated_segments(synth, spikes, pre, post, gap)
    sta_r, sta_s = seg_real.mean(axis=0), seg_synth.mean(axis=0)
    error = float(np.linalg.norm(sta_s - sta_r) / max(np.linalg.norm(sta_r), 1e-12))
    if return_sta:
        return error, np.arange(-pre, post) / fs, sta_r, sta_s
    return error


def _mean_log_spectrum(X, fs, nperseg):
    rows = [x for x in (X[i, :n] for i, n in enumerate(trace_lengths(X))) if len(x) >= nperseg]
    if not rows:
        return None
    psd = [welch(x, fs=fs, nperseg=nperseg)[1] for x in rows]
    freqs = np.fft.rfftfreq(nperseg, 1.0 / fs)
    return freqs, np.mean(10.0 * np.log10(np.maximum(psd, 1e-30)), axis=0)


def spectrum_distance(
    real, synthetic, fs, *, segment_seconds=4.0, fmax=None, return_spectra=False
):
    """Mean absolute difference (dB) between the mean log power spectra of two sets.

    Each trace's power spectral density is estimated by Welch's method
    (:func:`scipy.signal.welch`, segments of ``segment_seconds``); the
    spectra in dB are averaged over traces and compared over the frequencies
    above 0 and up to ``fmax``.

    Parameters
    ----------
    real, synthetic : array-like of shape (n_traces, n_frames)
        Traces, NaN-padded at the end; the sets need not be paired.
    fs : float
        Frame rate in Hz.
    segment_seconds : float, default=4.0
        Welch segment length (frequency resolution ``1 / segment_seconds``).
        Traces shorter than one segment are left out.
    fmax : float, default=None
        Highest frequency compared; default the Nyquist frequency ``fs / 2``.
    return_spectra : bool, default=False
        Also return the frequencies and both mean spectra (dB).

    Returns
    -------
    distance : float
        Mean absolute difference in dB; 0 for identical sets.
    freqs, spectrum_real, spectrum_synth : ndarray
        Only with ``return_spectra=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.evaluation import spectrum_distance
    >>> x = np.random.default_rng(0).normal(size=(4, 3000))
    >>> round(spectrum_distance(x, 10.0 * x, fs=30.0), 1)  # 10x the amplitude: +20 dB
    20.0
    """
    fs = check_fs(fs)
    real, synthetic = _check_set(real, "real"), _check_set(synthetic, "synthetic")
    nperseg = int(round(check_fs(segment_seconds, "segment_seconds") * fs))
    if nperseg < 8:
        raise ValueError(
            f"segment_seconds={segment_seconds} at fs={fs:g} gives {nperseg} frames; need 8+."
        )
    spectra = []
    for X, name in ((real, "real"), (synthetic, "synthetic")):
        got = _mean_log_spectrum(X, fs, nperseg)
        if got is None:
            raise ValueError(
                f"every {name} trace is shorter than one Welch segment of {segment_seconds:g} s "
                f"({nperseg} frames); use a shorter segment_seconds."
            )
        spectra.append(got)
    (freqs, s_real), (_, s_synth) = spectra
    keep = (freqs > 0) & (freqs <= (fs / 2.0 if fmax is None else float(fmax)))
    distance = float(np.mean(np.abs(s_synth[keep] - s_real[keep])))
    if return_spectra:
        return distance, freqs[keep], s_real[keep], s_synth[keep]
    return distance


# --------------------------------------------------------------------------- #
# References and the report
# --------------------------------------------------------------------------- #
def _baselines(X, fs, window=30.0):
    """Each trace's running low-percentile baseline (NaN in the padding)."""
    return map_traces(X, lambda x: rolling_baseline(x, window, fs=fs))


def reference_generators(real_calcium, fs, indicator="GCaMP6s", random_state=0):
    """The two reference generators, matched to a set of real traces.

    Parameters
    ----------
    real_calcium : array-like of shape (n_traces, n_frames)
        The real traces the references imitate, NaN-padded at the end.
    fs : float
        Frame rate in Hz.
    indicator : str or dict, default="GCaMP6s"
        Kinetics of the simulator (see
        :func:`calgan_sklearn.datasets.render_calcium`).
    random_state : int, default=0
        Seed of the rendered noise and amplitude jitter.

    Returns
    -------
    generators : dict
        ``"simulator"``: renders spike trains of the shape of ``real_calcium``
        with :func:`~calgan_sklearn.datasets.render_calcium`, each trace's
        amplitude fitted by least squares to the real trace and its noise SD
        (:func:`calgan_sklearn.signal.noise_sd`) matched, on the real trace's
        running baseline (:func:`calgan_sklearn.signal.rolling_baseline`, 30 s);
        ``"matched noise"``: white noise of each trace's noise SD on its
        baseline, no transients (the trivial floor).

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import reference_generators
    >>> sim = make_calcium(n_neurons=2, duration=30.0, fs=30.0, random_state=0)
    >>> refs = reference_generators(sim.calcium, sim.fs, "GCaMP6s")
    >>> refs["simulator"](sim.spikes).shape
    (2, 900)
    """
    from .datasets import render_calcium

    fs = check_fs(fs)
    real = _check_set(real_calcium, "real_calcium")
    base, sds = _baselines(real, fs), noise_sd(real)  # each trace's, padding left out

    def matched_noise(spikes):
        rng = check_random_state(random_state)
        return base + sds[:, None] * rng.standard_normal(real.shape)

    def simulator(spikes):
        clean = render_calcium(spikes, fs, indicator, amplitude=1.0, random_state=random_state)
        signal = np.nan_to_num(real - base)
        clean0 = np.nan_to_num(clean)
        gain = (clean0 * signal).sum(axis=1) / np.maximum((clean0**2).sum(axis=1), 1e-12)
        amplitude = np.where(gain > 0, gain, 1e-3)
        rendered = render_calcium(
            spikes, fs, indicator, amplitude=amplitude, noise_sd=sds, random_state=random_state
        )
        return base + rendered

    return {REFERENCES[0]: simulator, REFERENCES[1]: matched_noise}


def _render_with(name, generator, spikes, real):
    synth = np.asarray(generator(spikes.copy()), dtype=float)
    if synth.shape != real.shape:
        raise ValueError(
            f"generator {name!r} returned shape {synth.shape} for spikes of shape {real.shape}; "
            "it must return calcium of the spikes' shape."
        )
    padded = np.isnan(real)
    if np.isnan(synth[~padded]).any() or np.isinf(synth).any():
        raise ValueError(f"generator {name!r} returned NaN or inf inside the traces.")
    synth[padded] = np.nan
    return synth


def realism_report(
    real_calcium,
    spikes,
    fs,
    generators=None,
    *,
    indicator="GCaMP6s",
    groups=None,
    references=True,
    crop_seconds=5.0,
    window=(-0.5, 3.0),
    cv=5,
    random_state=0,
):
    """Realism of several generators on the same real traces, with two references.

    Every generator renders the real spike trains; its calcium is compared with
    the real calcium by :func:`two_sample_auc` (paired crops),
    :func:`sta_error` and :func:`spectrum_distance`.

    Parameters
    ----------
    real_calcium : array-like of shape (n_traces, n_frames)
        Real traces (held-out neurons), NaN-padded at the end.
    spikes : array-like of shape (n_traces, n_frames)
        Their spike counts.
    fs : float
        Frame rate in Hz.
    generators : dict of str to callable, default=None
        ``name -> generator``; ``generator(spikes)`` returns calcium of the
        spikes' shape (its values in the padding are ignored).
    indicator : str or dict, default="GCaMP6s"
        Kinetics of the simulator reference (see
        :func:`calgan_sklearn.datasets.render_calcium`).
    groups : array-like of shape (n_traces,), default=None
        Group of each trace for the classifier's folds (e.g. ``neuron``).
    references : bool, default=True
        Add the references :data:`REFERENCES` of :func:`reference_generators`
        (the package's simulator with each trace's amplitude and noise
        matched; white noise of each trace's noise SD on its baseline).
    crop_seconds, cv, random_state
        Passed to :func:`two_sample_auc` (``random_state`` also seeds the
        references).
    window : (float, float), default=(-0.5, 3.0)
        Passed to :func:`sta_error`; NaN where too few isolated spikes.

    Returns
    -------
    report : pandas.DataFrame
        One row per generator (references last): ``generator``, ``reference``
        (bool), ``auc``, ``sta_error``, ``spectrum_distance``, ``n_traces``.

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import realism_report
    >>> sim = make_calcium(n_neurons=6, duration=30.0, fs=30.0, firing_rate=0.3, random_state=0)
    >>> report = realism_report(sim.calcium, sim.spikes, sim.fs, cv=2)
    >>> report["generator"].tolist()
    ['simulator', 'matched noise']
    """
    fs = check_fs(fs)
    real = _check_set(real_calcium, "real_calcium")
    spikes = check_spikes(spikes, real, calcium_name="real_calcium")
    generators = dict(generators or {})
    clash = sorted(set(generators) & set(REFERENCES)) if references else []
    if clash:
        raise ValueError(f"generator names {clash} are taken by the references; rename them.")
    rows, all_generators = [], [(name, gen, False) for name, gen in generators.items()]
    if references:
        refs = reference_generators(real, fs, indicator, random_state)
        all_generators += [(name, gen, True) for name, gen in refs.items()]
    if not all_generators:
        raise ValueError("no generator to evaluate: pass generators or references=True.")
    for name, generator, is_reference in all_generators:
        synth = _render_with(name, generator, spikes, real)
        try:
            sta = sta_error(real, synth, spikes, fs, window)
        except ValueError as exc:
            warnings.warn(f"sta_error is NaN for {name!r}: {exc}", UserWarning, stacklevel=2)
            sta = np.nan
        rows.append(
            dict(
                generator=name,
                reference=is_reference,
                auc=two_sample_auc(
                    real,
                    synth,
                    fs,
                    spikes=spikes,
                    groups=groups,
                    crop_seconds=crop_seconds,
                    cv=cv,
                    random_state=random_state,
                ),
                sta_error=sta,
                spectrum_distance=spectrum_distance(real, synth, fs),
                n_traces=len(real),
            )
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- #
# Train on synthetic, test on real
# --------------------------------------------------------------------------- #
def _as_pair(data, name):
    if isinstance(data, dict):
        data = (data["calcium"], data["spikes"])
    try:
        calcium, spikes = data
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a (calcium, spikes) pair or a Bunch with calcium and spikes."
        ) from exc
    calcium = check_traces(calcium, name=f"{name} calcium")
    return calcium, check_spikes(spikes, calcium, name=f"{name} spikes", calcium_name=name)


def _fit_score(estimator, fs, train, test):
    est = (
        estimator() if callable(estimator) and not hasattr(estimator, "fit") else clone(estimator)
    )
    if "fs" in est.get_params():
        est.set_params(fs=fs)
    est.fit(*train)
    rates = est.predict(test[0])
    from .metrics import spikefinder_correlation

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*correlation.*")
        scores = spikefinder_correlation(test[1], rates, fs, average=False)
    return float(np.nanmean(scores))


def tstr_score(estimator, synthetic_train, real_test, fs, *, real_train=None):
    """Train on synthetic, test on real: SpikeFinder correlation on held-out real traces.

    Parameters
    ----------
    estimator : estimator or callable
        An unfitted trace estimator with ``fit(calcium, spikes)`` and
        ``predict(calcium)`` returning rates (cloned for every fit; ``fs`` is
        set where it is a parameter), or a callable returning a new one.
    synthetic_train : (calcium, spikes) or Bunch
        Rendered training traces, e.g. a generator's calcium for the training
        neurons' spike trains.
    real_test : (calcium, spikes) or Bunch
        Held-out real traces.
    fs : float
        Frame rate in Hz of all traces.
    real_train : (calcium, spikes) or Bunch, default=None
        The real training traces; given, the same estimator is also trained on
        them (train on real, test on real) and the ratio is reported.

    Returns
    -------
    scores : dict
        ``tstr`` (trained on synthetic), ``trtr`` (trained on real; NaN
        without ``real_train``) and ``ratio`` = ``tstr / trtr``: mean
        SpikeFinder correlations over the test traces with spikes.

    Examples
    --------
    >>> from calgan_sklearn.baselines import OASIS
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import tstr_score
    >>> a = make_calcium(n_neurons=2, duration=30.0, fs=30.0, random_state=0)
    >>> b = make_calcium(n_neurons=2, duration=30.0, fs=30.0, random_state=1)
    >>> scores = tstr_score(OASIS(), a, b, fs=30.0, real_train=b)
    >>> sorted(scores)
    ['ratio', 'trtr', 'tstr']
    """
    fs = check_fs(fs)
    synthetic_train = _as_pair(synthetic_train, "synthetic_train")
    real_test = _as_pair(real_test, "real_test")
    tstr = _fit_score(estimator, fs, synthetic_train, real_test)
    trtr = np.nan
    if real_train is not None:
        trtr = _fit_score(estimator, fs, _as_pair(real_train, "real_train"), real_test)
    return dict(tstr=tstr, trtr=trtr, ratio=tstr / trtr if trtr else np.nan)


# --------------------------------------------------------------------------- #
# Neuron split
# --------------------------------------------------------------------------- #
def split_neurons(data, test_size=0.25, random_state=0):
    """Split the neurons of every dataset into training and held-out neurons.

    Within each ``dataset`` label, a fraction ``test_size`` of the ``neuron``
    labels (at least one, and at least one left for training) is held out;
    all traces of a neuron go to the same side. A dataset with a single
    neuron stays in training, with a warning.

    Parameters
    ----------
    data : Bunch or dict
        A loader's Bunch: ``calcium``, ``spikes``, ``fs`` and per-trace
        ``neuron`` (and ``dataset``; default one dataset) labels.
    test_size : float, default=0.25
        Fraction of each dataset's neurons held out, in (0, 1).
    random_state : int, RandomState instance or None, default=0
        Seed of the draw.

    Returns
    -------
    train, test : Bunch
        ``calcium``, ``spikes``, ``fs``, ``dataset``, ``neuron`` and
        ``indicator`` of the training and held-out traces.

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import split_neurons
    >>> sim = make_calcium(n_neurons=8, duration=5.0, random_state=0)
    >>> train, test = split_neurons(sim, test_size=0.25)
    >>> len(train.calcium), len(test.calcium)
    (6, 2)
    """
    from .benchmark import _subset

    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}.")
    if "neuron" not in data:
        raise ValueError("data has no 'neuron' labels; split_neurons groups traces by neuron.")
    data = Bunch(**data)
    neuron = np.asarray(data["neuron"], dtype=str)
    dataset = np.asarray(data.get("dataset", np.full(len(neuron), "")), dtype=str)
    rng = check_random_state(random_state)
    held_out = np.zeros(len(neuron), dtype=bool)
    for name in np.unique(dataset):
        neurons = np.unique(neuron[dataset == name])
        if len(neurons) < 2:
            warnings.warn(
                f"dataset {name!r} has one neuron; it stays in training.", UserWarning, 2
            )
            continue
        k = min(max(int(round(test_size * len(neurons))), 1), len(neurons) - 1)
        chosen = rng.choice(neurons, k, replace=False)
        held_out |= (dataset == name) & np.isin(neuron, chosen)
    return _subset(data, np.flatnonzero(~held_out)), _subset(data, np.flatnonzero(held_out))


# --------------------------------------------------------------------------- #
# Figure
# --------------------------------------------------------------------------- #
def _figure_class():
    """matplotlib's ``Figure``, imported only when a figure is drawn."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "plot_realism draws with matplotlib, which is not installed; install the "
            "optional extra with `pip install calgan_sklearn[plot]` (or `pip install "
            "matplotlib`)."
        ) from exc
    return Figure


def _busiest_stretch(spikes, n_frames):
    """Start and stop of the ``n_frames`` frames of a spike train holding most spikes."""
    length = len(spikes)
    if length <= n_frames:
        return 0, length
    start = int(np.argmax(np.convolve(spikes, np.ones(n_frames), mode="valid")))
    return start, start + n_frames


def _draw_pair(ax_real, ax_synth, real, synth, spikes, fs, seconds, labels):
    """One neuron: real and rendered calcium over the same stretch, spikes as ticks."""
    n = int(trace_lengths(real[None])[0])
    s = np.nan_to_num(spikes[:n])
    start, stop = _busiest_stretch(s, max(int(round(seconds * fs)), 2))
    t = np.arange(start, stop) / fs
    both = np.concatenate([real[start:stop], synth[start:stop]])
    lo, hi = float(np.min(both)), float(np.max(both))
    span = (hi - lo) or 1.0
    times = t[s[start:stop] > 0]
    for ax, x, label, color in (
        (ax_real, real, labels[0], "k"),
        (ax_synth, synth, labels[1], "C3"),
    ):
        ax.plot(t, x[start:stop], color=color, lw=0.7, label=label)
        ax.vlines(times, lo - 0.22 * span, lo - 0.07 * span, color="C0", lw=0.8, label="spikes")
        ax.set_ylim(lo - 0.25 * span, hi + 0.05 * span)
        ax.set_xlim(t[0], t[-1])


def _draw_sta(ax, real, synth, spikes, fs, window, labels):
    try:
        error, lags, sta_real, sta_synth = sta_error(
            real, synth, spikes, fs, window, return_sta=True
        )
    except ValueError:
        ax.text(
            0.5, 0.5, "too few isolated spikes", ha="center", va="center", transform=ax.transAxes
        )
        ax.set_title("spike-triggered average", fontsize="medium")
        return
    ax.plot(lags, sta_real, color="k", label=labels[0])
    ax.plot(lags, sta_synth, color="C3", label=labels[1])
    ax.axvline(0, color="C0", lw=0.8)
    ax.set(xlabel="time from isolated spike (s)", ylabel="calcium - pre-spike mean")
    ax.set_title(f"spike-triggered average (relative error {error:.2f})", fontsize="medium")
    ax.legend(fontsize="small")


def _draw_spectra(ax, real, synth, fs, segment_seconds, labels):
    try:
        distance, freqs, s_real, s_synth = spectrum_distance(
            real, synth, fs, segment_seconds=segment_seconds, return_spectra=True
        )
    except ValueError:
        ax.text(
            0.5,
            0.5,
            "traces shorter than one segment",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_title("mean log power spectrum", fontsize="medium")
        return
    ax.plot(freqs, s_real, color="k", label=labels[0])
    ax.plot(freqs, s_synth, color="C3", label=labels[1])
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="frequency (Hz)", ylabel="power (dB)")
    ax.set_title(f"mean log power spectrum (distance {distance:.1f} dB)", fontsize="medium")
    ax.legend(fontsize="small")


def plot_realism(
    real_calcium,
    rendered_calcium,
    spikes,
    fs,
    *,
    n_traces=3,
    seconds=30.0,
    window=(-0.5, 3.0),
    segment_seconds=4.0,
    labels=("real", "rendered"),
    fig=None,
):
    """Real and rendered calcium of the same spike trains side by side, with STA and spectra.

    The top rows show the first ``n_traces`` neurons, real calcium on the left
    and the calcium rendered from the same spike train on the right (same
    axes), over the ``seconds`` that hold most spikes, with the spikes as ticks
    below the traces. The bottom row overlays the spike-triggered averages
    around isolated spikes (:func:`sta_error`) and the mean log power spectra
    (:func:`spectrum_distance`) of all traces, with those measures in the
    titles. Frames padded (NaN) in either set are left out of both.

    Parameters
    ----------
    real_calcium, rendered_calcium : array-like of shape (n_traces, n_frames)
        Real traces and the traces rendered from their spike trains (e.g.
        ``CalciumGAN(fs=...).sample(y=spikes)[0]``), NaN-padded at the end.
    spikes : array-like of shape (n_traces, n_frames)
        The spike counts both share.
    fs : float
        Frame rate in Hz.
    n_traces : int, default=3
        Neurons drawn in the top rows (the first ones; fewer if there are fewer).
    seconds : float, default=30.0
        Length of the stretch drawn for each neuron.
    window : (float, float), default=(-0.5, 3.0)
        Spike-triggered average window in seconds, as in :func:`sta_error`.
    segment_seconds : float, default=4.0
        Welch segment length of the spectra, as in :func:`spectrum_distance`.
    labels : (str, str), default=("real", "rendered")
        Names of the two sets in titles and legends.
    fig : matplotlib.figure.Figure, default=None
        Figure to draw into (empty); default a new one, made without pyplot.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``2 * n_traces`` trace axes (real, rendered per neuron), then the STA
        and the spectrum axes. Save it with ``fig.savefig(path)``.

    See Also
    --------
    realism_report : The same measures, and a two-sample classifier, as a table.

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> from calgan_sklearn.evaluation import plot_realism, reference_generators
    >>> sim = make_calcium(n_neurons=3, duration=60.0, fs=30.0, random_state=0)
    >>> rendered = reference_generators(sim.calcium, sim.fs)["simulator"](sim.spikes)
    >>> fig = plot_realism(sim.calcium, rendered, sim.spikes, sim.fs, n_traces=2)
    >>> len(fig.axes)
    6
    """
    fs = check_fs(fs)
    real = _check_set(real_calcium, "real_calcium")
    synth = _check_set(rendered_calcium, "rendered_calcium")
    _check_same_shape(real, synth, "real_calcium", "rendered_calcium")
    spikes = check_spikes(spikes, real, calcium_name="real_calcium")
    if not isinstance(n_traces, (int, np.integer)) or n_traces < 1:
        raise ValueError(f"n_traces must be a positive integer, got {n_traces!r}.")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}.")
    padded = np.isnan(real) | np.isnan(synth)
    real, synth = np.where(padded, np.nan, real), np.where(padded, np.nan, synth)
    spikes = np.where(padded, np.nan, spikes)
    labels = tuple(str(label) for label in labels)
    n_show = min(int(n_traces), len(real))
    if fig is None:
        fig = _figure_class()(figsize=(11, 1.5 * n_show + 3.2), layout="constrained")
    grid = fig.add_gridspec(n_show + 1, 2, height_ratios=[1.0] * n_show + [2.0])
    for i in range(n_show):
        ax_real = fig.add_subplot(grid[i, 0])
        ax_synth = fig.add_subplot(grid[i, 1], sharex=ax_real, sharey=ax_real)
        _draw_pair(ax_real, ax_synth, real[i], synth[i], spikes[i], fs, seconds, labels)
        ax_real.set_ylabel(f"trace {i}", fontsize="small")
        ax_synth.tick_params(labelleft=False)
        if i == 0:
            ax_real.set_title(f"{labels[0]} calcium", fontsize="medium")
            ax_synth.set_title(f"{labels[1]} from the same spikes", fontsize="medium")
        if i == n_show - 1:
            ax_real.set_xlabel("time (s)")
            ax_synth.set_xlabel("time (s)")
    _draw_sta(fig.add_subplot(grid[n_show, 0]), real, synth, spikes, fs, window, labels)
    _draw_spectra(fig.add_subplot(grid[n_show, 1]), real, synth, fs, segment_seconds, labels)
    return fig
