"""The embedded default dataset: simulated calcium traces with known spikes."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import curve_fit
from scipy.signal import lfilter
from sklearn.utils import Bunch, check_random_state

from .._validation import check_fs, check_spikes, check_traces
from ..signal import trace_lengths

__all__ = ["INDICATORS", "make_calcium", "render_calcium", "estimate_decay_time"]

# median |x(t+1) - x(t)| of white Gaussian noise with std 1: sqrt(2) * Phi^-1(0.75)
_MAD_DIFF = np.sqrt(2.0) * 0.6744897501960817

#: Kinetics of the simulated indicators. ``amplitude``: peak dF/F of one action
#: potential; ``rise`` / ``decay``: exponential time constants (s) of the
#: fluorescence transient (``decay`` = half-decay time / ln 2); ``hill``: Hill
#: coefficient; ``saturation``: Hill constant, in single-spike calcium increments
#: above rest. Values are rounded, approximate in vivo single-AP figures from
#: ``reference``.
INDICATORS = {
    "OGB-1": dict(
        amplitude=0.08,
        rise=0.01,
        decay=0.7,
        hill=1.0,
        saturation=40.0,
        reference="Theis et al. 2016 Neuron; Berens et al. 2018 PLoS Comput Biol",
    ),
    "GCaMP5k": dict(
        amplitude=0.08,
        rise=0.05,
        decay=0.7,
        hill=2.5,
        saturation=25.0,
        reference="Akerboom et al. 2012 J Neurosci",
    ),
    "GCaMP6s": dict(
        amplitude=0.25,
        rise=0.08,
        decay=1.2,
        hill=2.9,
        saturation=20.0,
        reference="Chen et al. 2013 Nature",
    ),
    "GCaMP6m": dict(
        amplitude=0.15,
        rise=0.05,
        decay=0.9,
        hill=3.0,
        saturation=25.0,
        reference="Chen et al. 2013 Nature",
    ),
    "GCaMP6f": dict(
        amplitude=0.15,
        rise=0.03,
        decay=0.6,
        hill=2.3,
        saturation=30.0,
        reference="Chen et al. 2013 Nature",
    ),
    "GCaMP7f": dict(
        amplitude=0.25,
        rise=0.02,
        decay=0.5,
        hill=3.1,
        saturation=30.0,
        reference="Dana et al. 2019 Nat Methods (jGCaMP7f)",
    ),
    "GCaMP8m": dict(
        amplitude=0.3,
        rise=0.005,
        decay=0.2,
        hill=1.9,
        saturation=30.0,
        reference="Zhang et al. 2023 Nature (jGCaMP8m)",
    ),
}

# resting calcium in single-spike increments: keeps small transients near-linear
_RESTING = 8.0


def _check_indicators(indicator, n_neurons):
    names = [indicator] if isinstance(indicator, str) else list(indicator)
    if not names:
        raise ValueError("indicator must name at least one indicator.")
    unknown = sorted({n for n in names if n not in INDICATORS})
    if unknown:
        raise ValueError(f"unknown indicator(s) {unknown}; valid names: {sorted(INDICATORS)}.")
    return [names[i % len(names)] for i in range(n_neurons)]


def _spike_counts(rng, rate, n_frames, fs, burst_prob):
    """Poisson events, a fraction of which are bursts of 2+ spikes 5-15 ms apart."""
    duration = n_frames / fs
    mean_size = 1.0 + burst_prob * 2.0  # a burst has 2 + Poisson(1) spikes
    n_events = rng.poisson(rate * duration / mean_size)
    starts = rng.uniform(0.0, duration, n_events)
    sizes = np.where(rng.uniform(size=n_events) < burst_prob, 2 + rng.poisson(1.0, n_events), 1)
    owner = np.repeat(np.arange(n_events), sizes)
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    isi = rng.uniform(0.005, 0.015, owner.size)
    isi[np.arange(owner.size) == first] = 0.0
    cum = np.cumsum(isi)
    offsets = cum - cum[first]
    times = starts[owner] + offsets
    frames = np.floor(times[times < duration] * fs).astype(int)
    return np.bincount(frames, minlength=n_frames).astype(float)


def _fluorescence(rng, counts, fs, kin, amplitude):
    """dF/F of one neuron: double-exponential transients through a Hill curve."""
    jitter = counts * rng.lognormal(0.0, 0.15, counts.size)
    gd, gr = np.exp(-1.0 / (kin["decay"] * fs)), np.exp(-1.0 / (kin["rise"] * fs))
    c = lfilter([1.0], [1.0, -gd], jitter) - lfilter([1.0], [1.0, -gr], jitter)
    tau_d, tau_r = kin["decay"], kin["rise"]
    t_peak = tau_d * tau_r / (tau_d - tau_r) * np.log(tau_d / tau_r)
    c /= np.exp(-t_peak / tau_d) - np.exp(-t_peak / tau_r)  # one spike peaks at 1

    n, k = kin["hill"], kin["saturation"] + _RESTING

    def hill(x):
        return x**n / (x**n + k**n)

    one_spike = hill(_RESTING + 1.0) - hill(_RESTING)
    return amplitude * (hill(_RESTING + np.maximum(c, 0.0)) - hill(_RESTING)) / one_spike


def _render(rng, counts, fs, kin, amplitude, drift, sigma):
    """Fluorescence of one neuron's spike counts, plus slow drift and white noise."""
    f = _fluorescence(rng, counts, fs, kin, amplitude)
    slow = gaussian_filter1d(rng.standard_normal(counts.size), 20.0 * fs, mode="wrap")
    # zero-mean before scaling: on traces much shorter than the 20 s time scale the
    # filtered noise is nearly its own mean, and dividing that by its tiny SD gave
    # offsets of thousands of dF/F
    slow -= slow.mean()
    sd = slow.std()
    if sd > 1e-12:
        f += drift * slow / sd
    return f + sigma * rng.standard_normal(counts.size)


def make_calcium(
    n_neurons=10,
    duration=60.0,
    fs=100.0,
    indicator="GCaMP6s",
    noise_level=1.0,
    firing_rate=1.0,
    burst_prob=0.2,
    drift=0.02,
    random_state=None,
):
    """Simulate dF/F calcium traces with ground-truth spikes.

    Spikes are Poisson events with per-neuron rates (lognormal around
    ``firing_rate``), a fraction ``burst_prob`` of them bursts of 2 or more
    spikes 5-15 ms apart. Each spike adds a double-exponential calcium transient
    with the indicator's rise and decay (:data:`INDICATORS`) and a jittered
    amplitude; fluorescence is a Hill function of calcium above a resting level
    (supralinear for a few spikes, saturating for many), plus a slow baseline
    drift and white Gaussian noise.

    Parameters
    ----------
    n_neurons : int, default=10
        Number of traces.
    duration : float, default=60.0
        Length of each trace in seconds.
    fs : float, default=100.0
        Frame rate in Hz.
    indicator : str or list of str, default="GCaMP6s"
        Indicator name(s) from :data:`INDICATORS`; a list is cycled over neurons.
    noise_level : float or tuple (low, high), default=1.0
        CASCADE noise level nu in %·s^-1/2 (a tuple draws one per neuron,
        uniformly). The noise std per frame is
        ``nu / 100 * sqrt(fs) / (sqrt(2) * 0.6745)``, so that
        :func:`calgan_sklearn.metrics.noise_level` (CASCADE's estimator,
        ``100 * median|dF(t+1) - dF(t)| / sqrt(fs)``) returns about ``nu``.
    firing_rate : float, default=1.0
        Median firing rate in Hz; each neuron's rate is lognormal around it.
    burst_prob : float, default=0.2
        Probability that a firing event is a burst.
    drift : float, default=0.02
        Standard deviation (dF/F) of the slow baseline drift (time scale ~20 s).
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible traces.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``calcium`` (dF/F) and ``spikes`` (counts per frame), ndarrays of shape
        (n_neurons, n_frames); ``fs``; per-trace ``dataset``
        (``"sim-<indicator>"``), ``neuron``, ``indicator``, ``firing_rate``
        and ``noise_level``; ``DESCR``.

    Notes
    -----
    Kinetics (see ``INDICATORS[name]["reference"]``): GCaMP6s/6m/6f from Chen et
    al. 2013, jGCaMP7f from Dana et al. 2019, jGCaMP8m from Zhang et al. 2023,
    GCaMP5k from Akerboom et al. 2012, OGB-1 as in the SpikeFinder data (Theis
    et al. 2016). They are rounded, approximate in vivo values.

    Examples
    --------
    >>> from calgan_sklearn.datasets import make_calcium
    >>> data = make_calcium(n_neurons=3, duration=10.0, indicator="GCaMP6f", random_state=0)
    >>> data.calcium.shape, str(data.dataset[0]), data.fs
    ((3, 1000), 'sim-GCaMP6f', 100.0)
    """
    fs = check_fs(fs)
    if int(n_neurons) != n_neurons or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, got {n_neurons!r}.")
    n_neurons = int(n_neurons)
    n_frames = int(round(check_fs(duration, "duration") * fs))
    if n_frames < 1:
        raise ValueError(f"duration={duration} s at fs={fs} Hz gives no frame.")
    if not 0 <= burst_prob <= 1:
        raise ValueError(f"burst_prob must be in [0, 1], got {burst_prob!r}.")
    names = _check_indicators(indicator, n_neurons)
    rng = check_random_state(random_state)
    low, high = np.broadcast_to(np.asarray(noise_level, dtype=float), (2,))
    if low < 0 or high < low:
        raise ValueError(f"noise_level must be >= 0 or a (low, high) range, got {noise_level!r}.")

    rates = check_fs(firing_rate, "firing_rate") * rng.lognormal(0.0, 0.5, n_neurons)
    nus = rng.uniform(low, high, n_neurons)
    calcium = np.empty((n_neurons, n_frames))
    spikes = np.empty((n_neurons, n_frames))
    for i, name in enumerate(names):
        kin = INDICATORS[name]
        spikes[i] = _spike_counts(rng, rates[i], n_frames, fs, burst_prob)
        amplitude = kin["amplitude"] * rng.lognormal(0.0, 0.2)
        sigma = nus[i] / 100.0 * np.sqrt(fs) / _MAD_DIFF
        calcium[i] = _render(rng, spikes[i], fs, kin, amplitude, drift, sigma)

    names = np.asarray(names, dtype=str)
    datasets = np.char.add("sim-", names)
    return Bunch(
        calcium=calcium,
        spikes=spikes,
        fs=fs,
        dataset=datasets,
        neuron=np.char.add(np.char.add(datasets, "/"), np.arange(n_neurons).astype(str)),
        indicator=names,
        firing_rate=rates,
        noise_level=nus,
        units=np.full(n_neurons, "dff"),
        DESCR="Simulated dF/F traces with ground-truth spikes (calgan_sklearn.make_calcium).",
    )


_KINETICS = ("amplitude", "rise", "decay", "hill", "saturation")


def _check_kinetics(indicator):
    if isinstance(indicator, str):
        return INDICATORS[_check_indicators(indicator, 1)[0]]
    missing = [k for k in _KINETICS if k not in indicator]
    if missing:
        raise ValueError(
            f"indicator kinetics lack {missing}; give a name from {sorted(INDICATORS)} or a "
            f"dict with keys {list(_KINETICS)} as in calgan_sklearn.datasets.INDICATORS."
        )
    if not 0 < indicator["rise"] < indicator["decay"]:
        raise ValueError(
            f"indicator kinetics need 0 < rise < decay, got rise={indicator['rise']!r} "
            f"and decay={indicator['decay']!r}."
        )
    return indicator


def render_calcium(
    spikes, fs, indicator="GCaMP6s", *, amplitude=None, noise_sd=0.0, drift=0.0, random_state=None
):
    """Render given spike trains into dF/F with the simulator's indicator model.

    The fluorescence model of :func:`make_calcium` (jittered double-exponential
    transients through a Hill curve, slow drift, white noise) applied to spike
    counts you supply, e.g. the real spike trains of ground-truth recordings.

    Parameters
    ----------
    spikes : array-like of shape (n_traces, n_frames)
        Spike counts per frame, NaN-padded at the end.
    fs : float
        Frame rate in Hz.
    indicator : str or dict, default="GCaMP6s"
        A name from :data:`INDICATORS`, or a dict with that table's keys
        (``amplitude``, ``rise``, ``decay``, ``hill``, ``saturation``).
    amplitude : float, array-like of shape (n_traces,) or None, default=None
        Peak dF/F of one spike per trace; ``None`` draws it per trace as
        :func:`make_calcium` does (the indicator's amplitude, lognormal jitter).
    noise_sd : float or array-like of shape (n_traces,), default=0.0
        Standard deviation of the white noise per frame, in dF/F.
    drift : float, default=0.0
        Standard deviation (dF/F) of the slow baseline drift (time scale ~20 s).
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible traces.

    Returns
    -------
    calcium : ndarray of shape (n_traces, n_frames)
        dF/F, NaN where ``spikes`` is padded.

    See Also
    --------
    make_calcium : Simulate spike trains and their fluorescence together.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.datasets import render_calcium
    >>> spikes = np.zeros((1, 300))
    >>> spikes[0, 50] = 1.0
    >>> calcium = render_calcium(spikes, fs=100.0, indicator="GCaMP6f", amplitude=0.15)
    >>> calcium.shape, bool(0.05 < calcium.max() < 0.3)  # one jittered transient
    ((1, 300), True)
    """
    fs = check_fs(fs)
    spikes = check_spikes(spikes)
    kin = _check_kinetics(indicator)
    rng = check_random_state(random_state)
    n = len(spikes)
    if amplitude is None:
        amplitude = kin["amplitude"] * rng.lognormal(0.0, 0.2, n)
    amplitude = np.broadcast_to(np.asarray(amplitude, dtype=float), (n,))
    noise_sd = np.broadcast_to(np.asarray(noise_sd, dtype=float), (n,))
    if (noise_sd < 0).any() or not np.isfinite(noise_sd).all():
        raise ValueError(f"noise_sd must be finite and >= 0, got {noise_sd.tolist()[:10]}.")
    calcium = np.full(spikes.shape, np.nan)
    for i, length in enumerate(trace_lengths(spikes)):
        if length:
            counts = spikes[i, :length]
            calcium[i, :length] = _render(rng, counts, fs, kin, amplitude[i], drift, noise_sd[i])
    return calcium


def _exp_decay(t, a, tau, b):
    return a * np.exp(-t / tau) + b


def estimate_decay_time(calcium, spikes, fs, *, window_s=4.0, min_spikes=10):
    """Decay time constant of each trace's spike-triggered average.

    The calcium around every spike frame (weighted by its count) is averaged
    from 0.5 s before to ``window_s`` after; ``a * exp(-t / tau) + b`` is fitted
    from the peak (within 1 s of the spike) to the end of the window.

    Parameters
    ----------
    calcium : array-like of shape (n_traces, n_frames)
        Traces, NaN-padded at the end.
    spikes : array-like of shape (n_traces, n_frames)
        Spike counts per frame.
    fs : float
        Frame rate in Hz.
    window_s : float, default=4.0
        Length of the average after the spike, in seconds.
    min_spikes : int, default=10
        Traces with fewer spikes get NaN.

    Returns
    -------
    tau : ndarray of shape (n_traces,)
        Decay time constants in seconds (NaN where not estimable).

    Examples
    --------
    >>> from calgan_sklearn.datasets import estimate_decay_time, make_calcium
    >>> sim = make_calcium(n_neurons=2, duration=120.0, indicator="GCaMP6f", random_state=0)
    >>> tau = estimate_decay_time(sim.calcium, sim.spikes, sim.fs)
    >>> bool(((tau > 0.2) & (tau < 1.0)).all())
    True
    """
    fs = check_fs(fs)
    calcium = check_traces(calcium, allow_nan_rows=True)
    spikes = check_spikes(spikes, calcium)
    pre, post = int(round(0.5 * fs)), int(round(window_s * fs))
    lengths = trace_lengths(calcium)
    taus = np.full(len(calcium), np.nan)
    t = np.arange(-pre, post) / fs
    for i, n in enumerate(lengths):
        frames = np.flatnonzero(np.nan_to_num(spikes[i, :n]) > 0)
        frames = frames[(frames >= pre) & (frames + post <= n)]
        weights = spikes[i, frames]
        if weights.sum() < min_spikes:
            continue
        segments = calcium[i, frames[:, None] + np.arange(-pre, post)[None, :]]
        sta = weights @ segments / weights.sum()
        sta -= sta[: pre - int(0.1 * fs)].mean() if pre > int(0.1 * fs) else sta[0]
        peak = pre + int(np.argmax(sta[pre : pre + max(int(fs), 1)]))
        tt, yy = t[peak:] - t[peak], sta[peak:]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                (a, tau, b), _ = curve_fit(
                    _exp_decay,
                    tt,
                    yy,
                    p0=(yy[0], 0.5, 0.0),
                    bounds=([0.0, 1.0 / fs, -np.inf], [np.inf, 10 * window_s, np.inf]),
                )
        except (RuntimeError, ValueError):
            continue
        taus[i] = tau
    return taus
