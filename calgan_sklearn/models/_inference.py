"""Deep trace-level spike inference at the recording's own frame rate.

A small, fully convolutional network reads whole calcium traces at their
native frame rate and returns expected spikes per frame, so inference is one
pass per trace and costs in proportion to its frames. Recordings faster than
:data:`MAX_NETWORK_FS` (20 Hz) are averaged over groups of ``ceil(fs / 20)``
frames first (the network then runs at 10-20 Hz), and each group's expected
count is spread over its frames on the way out, where the full-rate calcium
rises (:func:`calgan_sklearn.signal.spread_groups_by_rise`), so spike times
are sharper than a group. The frame rate the network runs at is one of its
input channels (``log(rate / 20 Hz)``), so one network serves 7.5 Hz and
20 Hz alike; two more carry statistics of the whole trace
(:func:`trace_statistics`) that tell neurons firing rarely from neurons firing
all the time, which a few seconds of context cannot.

Training follows CASCADE (Rupprecht et al. 2021): the ground truth is resampled
to a ladder of frame rates (:data:`TRAINING_RATES`), each resampled trace is
normalised exactly as a recording at that rate is at inference, and random
crops get noise added to reach random noise levels, a random time stretch
(kinetics) and, for a share of them, a low-pass filter (bandwidth). The loss is
the squared error against Gaussian-smoothed spike trains in spikes per frame,
so the rates are calibrated: summed over a trace they estimate its spike
count.
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
import warnings
import weakref

import keras
import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._validation import check_fs, check_spikes, check_traces
from ..base import SpikeInferenceMixin, _as_trace_array
from ..signal import (
    float_trace,
    group_means,
    noise_sd,
    rebin_frames,
    rolling_baseline,
    spread_groups,
    spread_groups_by_rise,
    timing_features,
    trace_lengths,
    trace_scale,
)
from ._base import (
    COMMON_PARAMETER_CONSTRAINTS,
    BaseKerasEstimator,
    gpu_available,
    inference_function,
    native_bfloat16,
)

__all__ = [
    "DeepSpikeInference",
    "build_inference_network",
    "member_mse",
    "network_rate",
    "normalize_traces",
    "trace_statistics",
]

#: Inference copies of fitted networks (bfloat16 for ``inference_dtype``, native
#: dilated convolutions on a CPU), by (dtype, native), each with a digest of the
#: weights it was made from; dropped with the network.
_TWINS = weakref.WeakKeyDictionary()

#: ``inference_dtype="auto"`` predicts inputs of at least this many frames in
#: bfloat16 (where the CPU has it): below, its one-off cost per input shape
#: (about 0.1 s, twice float32's) outweighs its faster arithmetic.
BFLOAT16_MIN_FRAMES = 10_000_000

#: Highest frame rate (Hz) the network runs at; faster recordings are averaged
#: over integer groups of frames down to at most this rate. Held out, 20 Hz
#: (with spike times placed by the full-rate calcium, ``refine_timing``) scored
#: better than 30 Hz and costs a half to two thirds of the network's work on
#: 25-60 Hz recordings (benchmarks/RESULTS.md).
MAX_NETWORK_FS = 20.0
#: Frame rates (Hz) that ``predict`` serves.
MIN_FS, MAX_FS = 7.5, 1000.0
#: Network frame rates the training data is resampled to.
TRAINING_RATES = (7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0, 30.0)
#: The rate channel of the input is ``log(rate / REFERENCE_FS)``.
REFERENCE_FS = 20.0
#: With ``normalize="noise"``, traces are in units of this many noise SDs,
#: which keeps typical inputs of order 1.
NOISE_UNITS = 10.0
#: Kernel size of the first convolution.
FIRST_KERNEL = 5
#: Traces longer than this many network frames are predicted in overlapping
#: pieces, which bounds the memory of inference whatever the trace length.
MAX_PIECE_FRAMES = 100_000
#: Chunks of traces ``predict`` infers at once, in threads: one chunk's array
#: work (normalisation, statistics, spike timing) runs while another's network
#: does, which keeps both cores of a small machine busy. Rates do not depend on it.
PREDICT_WORKERS = 2
#: Frames per inference batch (divided by the ensemble size): on a CPU, and on
#: a GPU, where few large batches keep the launches and (under JAX) the
#: compilations for new shapes few.
BATCH_FRAMES_CPU, BATCH_FRAMES_GPU = 100_000, 2_000_000


#: Whether ``predict`` runs dilated convolutions as :class:`NativeDilatedConv1D`
#: on a CPU under TensorFlow; False runs the Keras layers as trained (the
#: comparison of ``benchmarks/bench_speed.py --compare-keras``).
NATIVE_DILATIONS = True


def _native_dilations():
    """Whether inference copies use :class:`NativeDilatedConv1D`: TensorFlow on a
    CPU (on a GPU, and under other backends, ``Conv1D`` runs as measured)."""
    return NATIVE_DILATIONS and keras.backend.backend() == "tensorflow" and not gpu_available()


# --------------------------------------------------------------------------- #
# Frame rates
# --------------------------------------------------------------------------- #
def network_rate(fs):
    """Group size and network frame rate for a recording at ``fs`` Hz.

    Parameters
    ----------
    fs : float
        Frame rate of the recording in Hz, between 7.5 and 1000.

    Returns
    -------
    factor : int
        Frames averaged into one network frame (1 up to 20 Hz).
    rate : float
        ``fs / factor``, the rate the network runs at (at most 20 Hz).

    Raises
    ------
    ValueError
        If ``fs`` is outside 7.5-1000 Hz.

    Examples
    --------
    >>> from calgan_sklearn.models._inference import network_rate
    >>> network_rate(20.0), network_rate(30.0), network_rate(100.0)
    ((1, 20.0), (2, 15.0), (5, 20.0))
    """
    fs = check_fs(fs)
    if not MIN_FS * (1 - 1e-6) <= fs <= MAX_FS:
        raise ValueError(
            f"fs={fs:g} Hz is outside the {MIN_FS:g}-{MAX_FS:g} Hz that DeepSpikeInference "
            "serves; below 7.5 Hz single spikes cannot be resolved (resample or bin your "
            "traces), and fs must be the frame rate in Hz, not the frame period."
        )
    factor = max(int(math.ceil(fs / MAX_NETWORK_FS - 1e-9)), 1)
    return factor, fs / factor


# --------------------------------------------------------------------------- #
# Per-trace normalisation
# --------------------------------------------------------------------------- #
def normalize_traces(
    traces,
    method="noise",
    baseline_percentile=10.0,
    baseline_window=None,
    fs=MAX_NETWORK_FS,
    noise_sds=None,
):
    """Normalise each calcium trace so recordings in any units look alike.

    Parameters
    ----------
    traces : list of 1-D ndarray
        Traces without NaN, at the network's frame rate ``fs``.
    method : {"noise", "spread"}, default="noise"
        ``"noise"`` divides by ``NOISE_UNITS`` times the robust noise SD
        (:func:`calgan_sklearn.signal.noise_sd`); ``"spread"`` divides by the
        difference between the trace's 95th and 5th percentiles
        (:func:`calgan_sklearn.signal.trace_scale`).
    baseline_percentile : float, default=10.0
        Percentile of the trace subtracted as its baseline.
    baseline_window : float or None, default=None
        ``None`` subtracts one baseline per trace; a number subtracts a
        running baseline (:func:`calgan_sklearn.signal.rolling_baseline`) over
        windows of that many seconds, which follows slow drift.
    fs : float, default=20.0
        Frame rate of the traces (only used with ``baseline_window``).
    noise_sds : sequence of float, optional
        :func:`~calgan_sklearn.signal.noise_sd` of each trace, where the caller
        has it already (it is then not computed again).

    Returns
    -------
    normalized : list of 1-D ndarray of float32
    noise : ndarray of shape (n_traces,)
        Noise SD per frame of each normalised trace.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models._inference import normalize_traces
    >>> z, noise = normalize_traces([np.random.default_rng(0).normal(5, 2, 4000)])
    >>> round(float(noise[0]), 2)
    0.1
    """
    out, noise = [], []
    for k, x in enumerate(traces):
        x = float_trace(x)
        if baseline_window is None:
            base = np.percentile(x, baseline_percentile)
        else:
            base = rolling_baseline(x, baseline_window, baseline_percentile, fs=fs)
        sd = noise_sd(x) if noise_sds is None else float(noise_sds[k])
        scale = sd * NOISE_UNITS if method == "noise" else trace_scale(x, method)
        scale = scale if np.isfinite(scale) and scale > 1e-12 else 1.0
        z = np.empty(len(x), np.float32)  # block by block: no float64 temporaries
        for a in range(0, len(x), _BLOCK):
            b_ = base if np.ndim(base) == 0 else base[a : a + _BLOCK]
            z[a : a + _BLOCK] = (x[a : a + _BLOCK] - b_) / scale
        out.append(z)
        noise.append(sd / scale)
    return out, np.asarray(noise, dtype=float)


def remove_floor(rates, percentile):
    """Subtract a trace's ``percentile``-th percentile of ``rates`` and clip at zero.

    Parameters
    ----------
    rates : ndarray of shape (n_frames,)
        Predicted rates of one trace (no NaN); changed in place when writable
        and float.
    percentile : float
        Percentile (0-100) taken as the trace's silent level.

    Returns
    -------
    rates : ndarray of shape (n_frames,)
        The rates above the floor.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models._inference import remove_floor
    >>> remove_floor(np.array([0.1, 0.1, 0.1, 0.9, 0.1]), 20).round(3).tolist()
    [0.0, 0.0, 0.0, 0.8, 0.0]
    """
    rates = np.asarray(rates)
    if rates.size == 0:
        return rates
    floor = np.percentile(rates, percentile)
    rates -= rates.dtype.type(floor)
    return np.maximum(rates, 0, out=rates)


def _rate_feature(rate):
    return np.float32(math.log(rate / REFERENCE_FS))


#: Input channels of the network: calcium, frame rate, the two trace statistics,
#: and the dF/F flag and noise level.
N_CHANNELS = 6


def trace_statistics(z, rate):
    """Whole-trace statistics that tell sparse from busy neurons.

    A neuron that fires rarely has long stretches at noise level; one that
    fires all the time (many interneurons) fluctuates everywhere, so after the
    baseline is subtracted its flat stretches look alike but mean different
    rates. These statistics of the whole trace are two of the network's input
    channels, so it need not guess between them from a few seconds of context.

    Parameters
    ----------
    z : 1-D ndarray
        One normalised trace at the network rate.
    rate : float
        The network frame rate in Hz.

    Returns
    -------
    slow_sd : float
        SD of the trace smoothed over 0.5 s (Gaussian), in the trace's units.
    variance : float
        Variance of the trace.
    skewness : float
        Skewness of the trace (0 for fewer than 3 frames or a constant trace).
    """
    z = np.asarray(z)
    if z.dtype != np.float32:
        z = z.astype(np.float64, copy=False)
    if len(z) < 3:
        return 0.0, 0.0, 0.0
    sigma = max(0.5 * rate, 0.5)
    slow_sd = math.sqrt(_moments(_smoothed(z, sigma), 2)[1])
    _, var, third = _moments(z, 3)
    if not var > 0:
        return slow_sd, var, 0.0
    return slow_sd, var, third / var**1.5


#: Frames per block of the whole-trace statistics (bounds their working memory).
_BLOCK = 1 << 20


def _smoothed(z, sigma):
    """``gaussian_filter1d(z, sigma, mode="nearest")`` as float32, block by block.

    Each block is filtered with a margin of the kernel's reach on either side,
    so the values are those of filtering the whole trace at once, without its
    float64 copies.
    """
    if len(z) <= 2 * _BLOCK:
        return gaussian_filter1d(np.asarray(z, np.float64), sigma, mode="nearest")
    reach = int(4.0 * sigma + 0.5) + 1  # gaussian_filter1d's truncate=4
    out = np.empty(len(z), np.float32)
    for a in range(0, len(z), _BLOCK):
        b = min(a + _BLOCK, len(z))
        lo, hi = max(a - reach, 0), min(b + reach, len(z))
        # inner cuts see real frames within the kernel's reach; the trace's own
        # ends are extended as "nearest" extends them when filtering it whole
        part = np.asarray(z[lo:hi], np.float64)
        out[a:b] = gaussian_filter1d(part, sigma, mode="nearest")[a - lo : a - lo + (b - a)]
    return out


def _moments(x, order):
    """Mean and central moments 2..``order`` of ``x`` in float64, block by block."""
    n = len(x)
    mean = sum(float(np.sum(x[a : a + _BLOCK], dtype=np.float64)) for a in range(0, n, _BLOCK))
    mean /= n
    sums = [0.0] * (order - 1)
    for a in range(0, n, _BLOCK):
        c = np.asarray(x[a : a + _BLOCK], np.float64) - mean
        p = c * c
        sums[0] += float(p.sum())
        for k in range(1, order - 1):
            p *= c
            sums[k] += float(p.sum())
    return (mean, *(t / n for t in sums))


def _scale_channels(dff_noise, m=1.0):
    """The dF/F channels: a flag and ``log10(noise SD in dF/F) + 2`` (0, 0 if unknown).

    For dF/F data the noise level sets how large one spike is in noise units
    (a spike is worth about the same dF/F for one indicator), which the
    normalised trace alone cannot tell.
    """
    if dff_noise is None or not np.isfinite(dff_noise) or dff_noise <= 0:
        return np.float32(0.0), np.float32(0.0)
    level = math.log10(dff_noise * m) + 2.0
    return np.float32(1.0), np.float32(np.clip(level, -3.0, 3.0))


def _statistic_channels(stats, noise, m=1.0):
    """The two statistics channels, for a trace whose noise was raised ``m``-fold.

    ``log(slow SD / noise SD)`` drops by ``log m`` (smoothing keeps the slow
    part, the noise grows ``m``-fold); the skewness shrinks as the added
    variance dilutes the trace's own.
    """
    slow_sd, var, skew = stats
    added = noise * noise * (m * m - 1.0)
    ratio = math.log(max(slow_sd, 1e-6) / max(noise, 1e-12)) - math.log(m)
    if var + added > 0:
        skew = skew * (var / (var + added)) ** 1.5
    return np.float32(np.clip(ratio, -3.0, 6.0) / 2.0), np.float32(np.clip(skew, -3.0, 20.0) / 5.0)


# --------------------------------------------------------------------------- #
# Network and loss
# --------------------------------------------------------------------------- #
@keras.saving.register_keras_serializable(package="calgan_sklearn")
def member_mse(y_true, y_pred):
    """Squared error per frame, averaged over the ensemble members.

    Parameters
    ----------
    y_true : tensor of shape (batch, n_frames, 1)
        Target rates.
    y_pred : tensor of shape (batch, n_frames, n_members)
        Each member's predicted rates.

    Returns
    -------
    loss : tensor of shape (batch, n_frames)
        Mean over members of the squared error, so each member is trained as
        if alone (members share no weights).
    """
    from keras import ops

    return ops.mean(ops.square(y_true - y_pred), axis=-1)


class NativeDilatedConv1D(keras.layers.Conv1D):
    """A ``"same"``-padded ``Conv1D`` run as one TensorFlow convolution, dilated or not.

    Keras runs a dilated ``Conv1D`` under TensorFlow as space-to-batch, an
    undilated convolution and batch-to-space, three copies of the activations;
    TensorFlow's own ``conv2d`` takes the dilation as it is (oneDNN on a CPU).
    Same weights and results as ``Conv1D`` (to float rounding); the packaged
    network ran 1.56 times as fast in float32 and 1.60 in bfloat16 on this
    project's 2-core CPU (``benchmarks/bench_network.py``). Other backends,
    paddings and strides fall back to ``Conv1D``. Used for inference copies of
    trained networks (:meth:`DeepSpikeInference._inference_network`), never saved.
    """

    def call(self, inputs):
        if (
            keras.backend.backend() != "tensorflow"
            or self.padding != "same"
            or tuple(self.strides) != (1,)
            or self.groups != 1
            or self.data_format != "channels_last"
        ):
            return super().call(inputs)
        import tensorflow as tf

        kernel = tf.expand_dims(tf.cast(self.kernel, inputs.dtype), 0)
        dilations = [1, 1, int(self.dilation_rate[0]), 1]
        y = tf.nn.conv2d(tf.expand_dims(inputs, 1), kernel, 1, "SAME", dilations=dilations)
        y = tf.squeeze(y, 1)
        if self.use_bias:
            y = tf.nn.bias_add(y, tf.cast(self.bias, y.dtype))
        return y if self.activation is None else self.activation(y)


def build_inference_network(
    filters=32,
    kernel_size=3,
    dilations=(1, 2, 4, 8, 16, 32),
    first_kernel=FIRST_KERNEL,
    initial_rate=0.01,
    dtype=None,
    seed=None,
    n_members=1,
    native=False,
):
    """Build the fully convolutional spike-inference network (or an ensemble).

    Parameters
    ----------
    filters : int, default=32
        Channels of the trunk.
    kernel_size : int, default=3
        Kernel size of the dilated convolutions.
    dilations : sequence of int, default=(1, 2, 4, 8, 16, 32)
        Dilation of each residual block; the context on each side is
        ``sum(dilations) * (kernel_size - 1) / 2`` network frames.
    first_kernel : int, default=5
        Kernel size of the first convolution.
    initial_rate : float, default=0.01
        Rate (spikes per frame) the untrained network outputs everywhere; the
        mean rate of the training data is a good choice.
    dtype : str, optional
        Keras dtype policy of the hidden layers (the output is float32).
    seed : int, optional
        Seed of the weight initialisers.
    n_members : int, default=1
        Independent networks (no shared weights, different initial weights)
        that read the same input; their rates are stacked on the last axis.
    native : bool, default=False
        Build the convolutions as :class:`NativeDilatedConv1D` (one TensorFlow
        op each; faster inference on a CPU) instead of ``keras.layers.Conv1D``.
        The weights are the same; for inference copies, not for saving.

    Returns
    -------
    model : keras.Model
        Maps ``(batch, n_frames, 6)`` inputs (normalised calcium, the rate
        channel ``log(rate / 20 Hz)``, the two whole-trace statistics of
        :func:`trace_statistics`, a dF/F flag and ``log10(noise SD in dF/F) +
        2``) to ``(batch, n_frames, n_members)``
        non-negative rates in spikes per frame (one channel per member).

    Examples
    --------
    >>> from calgan_sklearn.models._inference import build_inference_network
    >>> build_inference_network(filters=8, dilations=(1, 2)).output_shape
    (None, None, 1)
    >>> build_inference_network(filters=8, dilations=(1, 2), n_members=3).output_shape
    (None, None, 3)
    """
    from keras import layers

    conv = NativeDilatedConv1D if native else layers.Conv1D
    inp = keras.Input(shape=(None, N_CHANNELS), name="calcium_rate_and_statistics")
    bias = float(np.log(np.expm1(max(float(initial_rate), 1e-6))))
    outputs = []
    for m in range(n_members):
        tag = "" if m == 0 else f"_m{m}"
        base = None if seed is None else seed + 1000 * m

        def init(i, base=base):
            return keras.initializers.GlorotUniform(seed=None if base is None else base + i)

        x = conv(
            filters,
            first_kernel,
            padding="same",
            activation="relu",
            kernel_initializer=init(0),
            dtype=dtype,
            name=f"input_conv{tag}",
        )(inp)
        for i, d in enumerate(dilations):
            h = conv(
                filters,
                kernel_size,
                dilation_rate=int(d),
                padding="same",
                activation="relu",
                kernel_initializer=init(i + 1),
                dtype=dtype,
                name=f"dilated_{i}{tag}",
            )(x)
            h = conv(
                filters, 1, kernel_initializer=init(100 + i), dtype=dtype, name=f"mix_{i}{tag}"
            )(h)
            x = layers.Add(dtype=dtype, name=f"residual_{i}{tag}")([x, h])
            x = layers.Activation("relu", dtype=dtype, name=f"relu_{i}{tag}")(x)
        outputs.append(
            conv(
                1,
                1,
                activation="softplus",
                kernel_initializer="zeros",
                bias_initializer=keras.initializers.Constant(bias),
                dtype="float32",
                name=f"rates{tag}",
            )(x)
        )
    out = outputs[0]
    if n_members > 1:
        out = layers.Concatenate(axis=-1, dtype="float32", name="members")(outputs)
    return keras.Model(inp, out, name="spike_inference")


def _distillation_mse(y_true, y_pred):
    """Squared error of the student (channel 0) against the ensemble's mean
    rate (the other channels); ``y_true`` is not used."""
    from keras import ops

    teacher = ops.stop_gradient(ops.mean(y_pred[..., 1:], axis=-1))
    return ops.square(y_pred[..., 0] - teacher)


# --------------------------------------------------------------------------- #
# Data pipeline
# --------------------------------------------------------------------------- #
class _RateBank:
    """The training traces resampled to one network rate and normalised there."""

    def __init__(self, rate, calcium, targets, noise, dff_noise=None):
        self.rate, self.calcium, self.targets, self.noise = rate, calcium, targets, noise
        self.feature = _rate_feature(rate)
        self.stats = [trace_statistics(c, rate) for c in calcium]
        if dff_noise is None:
            dff_noise = np.full(len(calcium), np.nan)
        #: noise SD per frame in dF/F of each trace (NaN: not dF/F)
        self.dff_noise = np.asarray(dff_noise, dtype=float)


class _CropDataset(keras.utils.PyDataset):
    """Random (augmented) crops cut on the fly from traces at several frame rates.

    Each batch holds ``batch_size`` crops of ``crop_length`` frames from one
    randomly chosen :class:`_RateBank`. With ``augment``, Gaussian noise raises
    each crop's noise SD by a random factor ``m`` in ``noise_range`` (and, for
    noise-normalised traces, the crop is divided by ``m`` so its noise stays at
    one unit), the crop is stretched in time by a random factor (kinetics),
    and a share (``lowpass_share``) of crops are low-pass filtered (zero-phase)
    as if recorded at a random rate between ``lowpass_min_fs`` and the bank's
    rate and resampled, then renormalised by their new noise level. With
    ``slow_noise_max``, half of the crops also get smooth noise (time scales of
    0.2-5 s) of up to that many noise SDs, with the targets unchanged. A share
    (``dff_dropout_share``) of dF/F crops are shown without their dF/F scale,
    as traces in arbitrary units are. Without
    ``augment`` the crops are the same on every pass (for validation). Traces
    shorter than a crop are zero-padded and masked by a zero sample weight.
    """

    #: Share of the augmented crops that are low-pass filtered.
    lowpass_share = 0.25
    #: Share of the augmented dF/F crops shown without their dF/F scale, so the
    #: network also learns to read traces in arbitrary units from every dataset.
    dff_dropout_share = 0.3
    #: Share of the augmented crops that get slow (non-white) noise.
    slow_noise_share = 0.5
    #: Range of the time scale (SD of the Gaussian smoothing, s) of slow noise.
    slow_noise_seconds = (0.2, 5.0)

    def _slow_noise(self, n, bank, i, rng):
        """Smooth Gaussian noise (fluctuations of 0.2-5 s) of up to ``slow_noise_max``
        noise SDs: baseline wobble that must not be read as spikes."""
        lo, hi = self.slow_noise_seconds
        sigma = math.exp(rng.uniform(math.log(lo), math.log(hi))) * bank.rate
        pad = int(3 * sigma)
        z = gaussian_filter1d(rng.normal(size=n + 2 * pad), sigma)[pad : pad + n]
        sd = z.std()
        if not sd > 0:
            return np.zeros(n, np.float32)
        amplitude = rng.uniform(0.0, self.slow_noise_max) * bank.noise[i]
        return (z * (amplitude / sd)).astype(np.float32)

    def __init__(
        self,
        banks,
        *,
        crop_length,
        batch_size,
        steps,
        noise_range=(1.0, 1.0),
        rescale=True,
        weights=None,
        augment=True,
        stretch=1.0,
        lowpass_min_fs=None,
        slow_noise_max=0.0,
        seed=0,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.banks = banks
        self.slow_noise_max = slow_noise_max
        self.crop_length, self.batch_size, self.steps = crop_length, batch_size, steps
        self.noise_range, self.rescale, self.augment = noise_range, rescale, augment
        self.stretch, self.lowpass_min_fs = stretch, lowpass_min_fs
        n = len(banks[0].calcium)
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        self.p = w / w.sum()
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __getitem__(self, idx):
        rng = self.rng if self.augment else np.random.default_rng([self.seed, idx])
        bank = self.banks[int(rng.integers(len(self.banks)))]
        L, B = self.crop_length, self.batch_size
        x = np.zeros((B, L, N_CHANNELS), np.float32)
        x[:, :, 1] = bank.feature
        y = np.zeros((B, L, 1), np.float32)
        w = np.zeros((B, L), np.float32)
        for b, i in enumerate(rng.choice(len(self.p), size=B, p=self.p)):
            c, t = self._cut(bank, i, rng)
            m = 1.0
            if self.augment:
                m = rng.uniform(*self.noise_range)
                extra = bank.noise[i] * math.sqrt(max(m * m - 1.0, 0.0))
                if extra > 0:
                    c = c + rng.normal(0.0, extra, size=len(c)).astype(np.float32)
                if self.slow_noise_max > 0 and rng.random() < self.slow_noise_share:
                    c = c + self._slow_noise(len(c), bank, i, rng)
                if self.rescale:
                    c = c / np.float32(m)
                if self.lowpass_min_fs is not None and rng.random() < self.lowpass_share:
                    c, change = self._lowpass(c, bank.rate, bank.noise[i], rng)
                    m = m * change
            x[b, : len(c), 0] = c
            x[b, :, 2:4] = _statistic_channels(bank.stats[i], bank.noise[i], m)
            if not (self.augment and rng.random() < self.dff_dropout_share):
                x[b, :, 4:6] = _scale_channels(bank.dff_noise[i], m)
            y[b, : len(c), 0] = t
            w[b, : len(c)] = 1.0
        return x, y, w

    def _lowpass(self, c, rate, noise, rng):
        """Low-pass ``c`` as if recorded at a random, lower frame rate.

        Returns the filtered crop and the factor by which its noise SD (in the
        trace's original units) changed.
        """
        from scipy.signal import butter, sosfiltfilt

        hi = 0.9 * rate
        lo = float(self.lowpass_min_fs)
        if len(c) < 32 or lo >= hi:
            return c, 1.0
        native = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        # zero-phase, so the filter does not shift the calcium against the spikes
        sos = butter(4, native / rate, output="sos")
        out = sosfiltfilt(sos, c.astype(np.float64), padtype="even")
        if self.rescale:
            # what normalize_traces would make of such a recording: noise of
            # one unit (1 / NOISE_UNITS) measured on the filtered trace itself
            sd = noise_sd(out)
            if np.isfinite(sd) and sd > 0:
                out = out * min(1.0 / (NOISE_UNITS * sd), 100.0)
                return out.astype(np.float32), max(sd / noise, 1e-3)
        return out.astype(np.float32), 1.0

    def _cut(self, bank, i, rng):
        """One crop of trace ``i`` (time-stretched by a random factor if augmenting)."""
        calcium, targets = bank.calcium[i], bank.targets[i]
        n, L = len(calcium), self.crop_length
        a = 1.0
        if self.augment and self.stretch > 1.0:
            a = math.exp(rng.uniform(-math.log(self.stretch), math.log(self.stretch)))
        span = min(int(math.ceil(L / a)), n)
        start = int(rng.integers(0, n - span + 1))
        c = calcium[start : start + span]
        t = targets[start : start + span]
        if a == 1.0:
            return c, t
        # frame k of the stretched crop lies at k / a source frames; rates per
        # frame shrink by 1 / a so the number of spikes is kept
        pos = np.arange(min(L, int(span * a))) / a
        src = np.arange(span)
        c = np.interp(pos, src, c).astype(np.float32)
        t = (np.interp(pos, src, t) / a).astype(np.float32)
        return c, t


# --------------------------------------------------------------------------- #
# Estimator
# --------------------------------------------------------------------------- #
class DeepSpikeInference(SpikeInferenceMixin, BaseKerasEstimator):
    """Infer spike rates from calcium traces with a small convolutional network.

    The network is fully convolutional over whole traces and runs at the
    recording's own frame rate (recordings above 20 Hz are averaged over
    groups of ``ceil(fs / 20)`` frames, and the rates placed back on their
    frames where the calcium rises), so inference is one batched pass per
    trace and costs in proportion to its frames. The rate the network runs at
    is one of its inputs, so one fitted model serves every frame rate from 7.5
    to 1000 Hz; two statistics of the whole trace (:func:`trace_statistics`)
    are inputs too, so a flat stretch of a neuron that fires all the time is
    not read like silence of one that fires rarely. Each trace is normalised
    on its own (baseline subtracted, divided by its noise level), so dF/F
    traces and traces in arbitrary units are treated alike. Rates are expected
    spikes per input frame: summed over a trace they estimate its number of
    spikes.

    Parameters
    ----------
    fs : float, default=100.0
        Frame rate of the traces passed to ``fit`` and ``predict``, in Hz
        (7.5-1000). Set it to each recording's rate before ``predict``.
    filters : int, default=32
        Channels of the convolutional trunk.
    kernel_size : int, default=3
        Kernel size of the dilated convolutions.
    depth : int, default=7
        Number of dilated residual blocks; block ``i`` has dilation
        ``dilation_base ** i``. With the defaults the network sees 127 network
        frames on each side (6.4 s at 20 Hz, 17 s at 7.5 Hz).
    dilation_base : int, default=2
        Growth factor of the dilation from block to block.
    normalize : {"noise", "spread"}, default="noise"
        Per-trace normalisation (:func:`normalize_traces`): subtract a low
        percentile as baseline and divide by ten robust noise SDs
        (``"noise"``, :func:`calgan_sklearn.signal.noise_sd`) or by the 5-95
        percentile spread (``"spread"``).
    baseline_window : float or None, default=None
        ``None`` subtracts one baseline (the 10th percentile) per trace; a
        number of seconds subtracts a running 10th percentile over windows of
        that length instead (:func:`calgan_sklearn.signal.rolling_baseline`),
        so slow drift of the baseline is not read as activity.
    units : {"dff", "arbitrary"}, default="dff"
        Units of the traces passed to ``predict`` (and, unless ``fit`` is told
        otherwise, to ``fit``): ``"dff"`` for dF/F (as CASCADE expects), whose
        noise level in dF/F tells the network how large one spike is in noise
        units; ``"arbitrary"`` for traces whose scale means nothing (e.g. the
        SpikeFinder CSVs), read from their shape alone.
    target_sigma : float, default=0.04
        Width (s) of the Gaussian that smooths the spike trains used as
        training targets (before they are summed into network frames).
    noise_max : float, default=3.0
        Noise augmentation: each training crop gets Gaussian noise that raises
        its noise SD by a random factor in ``[1, noise_max]``.
    stretch_max : float, default=2.0
        Time-stretch augmentation: each training crop is resampled in time by
        a random factor between ``1 / stretch_max`` and ``stretch_max``
        (log-uniform), which varies the apparent indicator kinetics; 1
        disables it.
    lowpass_min_fs : float or None, default=5.0
        Bandwidth augmentation: a quarter of the training crops are low-pass
        filtered (zero-phase) as if recorded at a random frame rate between
        ``lowpass_min_fs`` and the crop's rate and upsampled, so the network
        also serves recordings made at low frame rates and resampled (e.g.
        SpikeFinder dataset 4, recorded at about 8 Hz); None disables it.
    slow_noise_max : float, default=0.0
        Slow-noise augmentation: half of the training crops get smooth Gaussian
        noise (fluctuations of 0.2-5 s) of a random amplitude up to this many
        noise SDs, with the targets unchanged, so baseline wobble (neuropil,
        motion, drift) is not read as spikes; 0 disables it.
    crop_length : int, default=256
        Length of the training crops in network frames (8.5 s at 30 Hz, 34 s
        at 7.5 Hz).
    sample_weighting : {"frames", "traces"}, default="frames"
        Crops are drawn from a trace with probability proportional to its
        length (``"frames"``) or with equal probability per trace.
    ensemble_size : int, default=3
        Independent networks trained side by side from different initial
        weights on the same crops; ``predict`` returns the mean of their rates
        (unless they are distilled, below).
    distill_epochs : int, default=10
        After the ensemble is trained, one network of the same shape,
        starting from the first member's weights, is trained for this many
        epochs (on fresh augmented crops, at a third of ``learning_rate``) to
        reproduce the ensemble's mean rate, and replaces it: close to the ensemble's
        accuracy at the cost of one network in ``predict``. 0 keeps the
        ensemble; ignored with ``ensemble_size=1``.
    distill_filters : int, default=None
        Channels of the distilled network's trunk. None: ``filters``, and the
        network starts from the first member as above. Fewer make ``predict``
        faster (16 instead of 32: about 0.6 times the time, slightly less
        accurate held out; benchmarks/RESULTS.md); such a network starts from
        random weights and learns at the full ``learning_rate``. Ignored where
        nothing is distilled.
    inference_dtype : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the hidden layers in ``predict`` (training is not
        affected). ``"auto"``: bfloat16 for inputs of at least 10 million
        frames (:data:`BFLOAT16_MIN_FRAMES`) on a CPU with bfloat16
        instructions (AVX512-BF16 or AMX) when TensorFlow sees no GPU; there it
        runs about 1.4 times faster once TensorFlow has seen the input shapes,
        with rates within about 1% of float32's; float32 otherwise. Set
        ``"float32"`` for rates that do not depend on the machine or on the
        size of the input.
    floor_percentile : float or None, default=20.0
        Each predicted trace has this percentile of its own rates subtracted
        (and is clipped at zero). The network's rate never quite reaches zero
        in silence: trained on many recordings, it keeps a floor of roughly
        their mean firing, which inflates spike counts wherever a neuron fires
        less than the training neurons did (held out, the floor made up half
        of the predicted spikes on sparse datasets). Subtracting the trace's
        own silent level removes it; correlations are unchanged, counts
        (CASCADE's bias) much closer. Assumes the neuron is silent in at least
        this share of its frames; None keeps the raw rates (e.g. for neurons
        that never pause).
    refine_timing : bool, default=True
        For recordings above 20 Hz, whose network frames are groups of input
        frames: place each group's expected spikes on the frames where the
        full-rate calcium rises
        (:func:`calgan_sklearn.signal.spread_groups_by_rise`; rises within
        the noise are ignored, so noisy traces keep smoothly interpolated
        rates), instead of spreading them evenly. Counts are unchanged; held
        out, correlation rose on 10 of 13 such datasets (e.g. jGCaMP8m at
        122 Hz from 0.67 to 0.77). False spreads evenly. Where the placement
        was learned from a few neurons with ground truth
        (:meth:`calibrate_timing`), it replaces the rule.
    count_scale : float, default=1.0
        Factor the predicted rates are multiplied by (after the floor is
        removed). On a preparation the model has not seen, counts can be off
        by a large factor, since dF/F per spike and firing regimes differ
        between preparations beyond what a trace shows; correlations do not
        depend on it. Set it from a few neurons of the preparation with ground
        truth with :meth:`calibrate_counts`; held out, two such neurons per
        dataset brought the median CASCADE bias over 23 datasets from 0.56 to
        0.31, five to 0.25 (``benchmarks/count_calibration.py``).
    {common_parameters}

    Attributes
    ----------
    model_ : keras.Model
        The fitted network: normalised calcium and rate channel to rates per
        network frame.
    history_ : dict of str to list of float
        Training (and validation) loss per epoch.
    n_iter_ : int
        Epochs trained.
    mean_rate_ : float
        Mean spike rate of the training data in spikes per second.
    training_rates_ : list of float
        Network frame rates (Hz) the training data was resampled to.
    steps_per_epoch_ : int
        Gradient steps per epoch.
    n_features_in_ : int
        Number of frames (columns) of the training array.
    timing_coef_ : ndarray of shape (40,)
        Only after :meth:`calibrate_timing`: the learned weights that place
        spikes within network frames (instead of the rise rule). A fit from
        scratch removes it.
    timing_fs_ : float
        Only after :meth:`calibrate_timing`: the frame rate it was made at.
        ``predict`` at another ``fs`` warns (the weights are per frame).
    count_units_ : str
        Only after :meth:`calibrate_counts`: the ``units`` it was made in.
        ``predict`` in other units with ``count_scale != 1`` warns: the
        network counts traces read as dF/F and as arbitrary units differently
        (held out, by a factor of 0.6-6.7 per dataset).

    See Also
    --------
    calgan_sklearn.base.SpikeInferenceMixin : The trace convention.
    calgan_sklearn.baselines.OASIS : Classical deconvolution baseline.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models._inference import DeepSpikeInference
    >>> rng = np.random.default_rng(0)
    >>> spikes = rng.poisson(0.02, size=(4, 2000)).astype(float)
    >>> kernel = np.exp(-np.arange(200) / 50.0)
    >>> calcium = np.array([np.convolve(s, kernel)[:2000] for s in spikes])
    >>> calcium += rng.normal(0, 0.1, calcium.shape)
    >>> est = DeepSpikeInference(filters=8, depth=2, epochs=1, ensemble_size=1,
    ...                          random_state=0)
    >>> est.fit(calcium, spikes).predict(calcium).shape
    (4, 2000)
    """

    _parameter_notes = {
        "epochs": "Each epoch draws as many crop frames as the training traces have "
        "frames at the mean training rate (17.2 Hz). Held out over the 23 datasets of "
        "../shared/data, 15 epochs scored a dataset-mean correlation of 0.526 against "
        "0.520 for 10 (benchmarks/RESULTS.md).",
        "batch_size": "Its examples are crops of ``crop_length`` frames.",
        "learning_rate": "It is the initial rate of a cosine decay.",
        "validation_fraction": "The rows are traces; their ``sample_weight`` and "
        "``units`` go with them.",
    }

    _parameter_constraints: dict = {
        **COMMON_PARAMETER_CONSTRAINTS,
        "fs": [Interval(numbers.Real, 0, None, closed="neither")],
        "filters": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 0, None, closed="left")],
        "dilation_base": [Interval(numbers.Integral, 1, None, closed="left")],
        "normalize": [StrOptions({"noise", "spread"})],
        "baseline_window": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "units": [StrOptions({"dff", "arbitrary"})],
        "target_sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "noise_max": [Interval(numbers.Real, 1, None, closed="left")],
        "stretch_max": [Interval(numbers.Real, 1, None, closed="left")],
        "lowpass_min_fs": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "slow_noise_max": [Interval(numbers.Real, 0, None, closed="left")],
        "crop_length": [Interval(numbers.Integral, 8, None, closed="left")],
        "sample_weighting": [StrOptions({"frames", "traces"})],
        "ensemble_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "distill_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "distill_filters": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "inference_dtype": [StrOptions({"auto", "float32", "bfloat16"})],
        "floor_percentile": [Interval(numbers.Real, 0, 100, closed="left"), None],
        "refine_timing": ["boolean"],
        "count_scale": [Interval(numbers.Real, 0, None, closed="neither")],
    }
    _min_samples = 1

    def __init__(
        self,
        fs=100.0,
        *,
        filters=32,
        kernel_size=3,
        depth=7,
        dilation_base=2,
        normalize="noise",
        baseline_window=None,
        units="dff",
        target_sigma=0.04,
        noise_max=3.0,
        stretch_max=2.0,
        lowpass_min_fs=5.0,
        slow_noise_max=0.0,
        crop_length=256,
        sample_weighting="frames",
        ensemble_size=3,
        distill_epochs=10,
        distill_filters=None,
        inference_dtype="auto",
        floor_percentile=20.0,
        refine_timing=True,
        count_scale=1.0,
        epochs=15,
        batch_size=32,
        learning_rate=3e-3,
        validation_fraction=0.0,
        patience=5,
        callbacks=None,
        verbose=0,
        random_state=None,
        warm_start=False,
        mixed_precision=False,
        jit_compile=False,
        distribute=False,
    ):
        self.fs = fs
        self.filters = filters
        self.kernel_size = kernel_size
        self.depth = depth
        self.dilation_base = dilation_base
        self.normalize = normalize
        self.baseline_window = baseline_window
        self.units = units
        self.target_sigma = target_sigma
        self.noise_max = noise_max
        self.stretch_max = stretch_max
        self.lowpass_min_fs = lowpass_min_fs
        self.slow_noise_max = slow_noise_max
        self.crop_length = crop_length
        self.sample_weighting = sample_weighting
        self.ensemble_size = ensemble_size
        self.distill_epochs = distill_epochs
        self.distill_filters = distill_filters
        self.inference_dtype = inference_dtype
        self.floor_percentile = floor_percentile
        self.refine_timing = refine_timing
        self.count_scale = count_scale
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

    # -- public API ---------------------------------------------------------
    def fit(self, X, y, sample_weight=None, units=None):
        """Train the network on calcium traces and their spike counts.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.
        y : array-like of shape (n_traces, n_frames)
            Spike counts per frame, NaN (or anything) where ``X`` is NaN.
        sample_weight : array-like of shape (n_traces,), default=None
            Relative weight of each trace: training crops are drawn from a
            trace with probability proportional to its weight times its length
            (times 1 instead of its length with ``sample_weighting="traces"``).
            E.g. ``1 / frames of the trace's dataset`` balances datasets. With
            ``validation_fraction > 0`` the weights of the held-out traces
            weight their validation crops in the same way.
        units : array-like of shape (n_traces,) of {"dff", "arbitrary"}, default=None
            Units of each trace, for training data that mixes dF/F recordings
            with recordings in arbitrary units (e.g. CASCADE and SpikeFinder);
            None: every trace is in the estimator's ``units``.

        Returns
        -------
        self : DeepSpikeInference
            The fitted estimator.
        """
        # checked before the traces, as before: a bad weight is named first
        sample_weight = self._check_sample_weight(sample_weight, X)
        return self._fit(X, y, sample_weight=sample_weight, units=self._check_units(units, X))

    def predict(self, X, out=None):
        """Spike rates (expected spikes per frame) on the input's frames.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.
        out : ndarray of shape (n_traces, n_frames), default=None
            Array the rates are written to and returned, e.g. a float32
            ``np.lib.format.open_memmap`` file, so that not even the output is
            held in memory; None returns a new float32 array.

        Returns
        -------
        rates : ndarray of shape (n_traces, n_frames), float32
            Non-negative rates, NaN exactly where ``X`` is NaN.

        Notes
        -----
        Memory is bounded whatever the size of ``X``: traces are read, validated
        and inferred in chunks (a float32 ``numpy.memmap``, e.g. from
        ``np.load(path, mmap_mode="r")``, is never loaded whole), long traces in
        pieces; only the float32 output is held in full, unless it is a memory
        map given as ``out``. Two chunks are inferred at once, in threads
        (:data:`PREDICT_WORKERS`); the rates are the same as one at a time. With
        ``verbose``, a progress bar counts neurons per second.
        """
        check_is_fitted(self)
        scale = self.count_scale
        real = isinstance(scale, numbers.Real) and not isinstance(scale, bool)
        if not (real and 0 < scale < np.inf):
            raise ValueError(
                f"count_scale must be a positive finite number (1.0: the rates as "
                f"trained); got {scale!r}. Set it with calibrate_counts or set_params."
            )
        self._check_timing_rate()
        self._check_count_units()
        X = _as_trace_array(X)  # a list is checked whole here; an array stays as it is
        network = self._inference_network(X.size)
        inference_function(network)  # made once, before the chunks' threads share it
        return self._predict_in_chunks(
            X,
            functools.partial(self._predict_chunk, network=network),
            out=out,
            progress=bool(self.verbose),
            dtype=np.float32,  # the network reads float32; long traces take half the memory
            fill=True,
            workers=PREDICT_WORKERS,
        )

    def calibrate_counts(self, X, y):
        """Set ``count_scale`` so the rates of neurons with ground truth sum to their spikes.

        Predicts ``X`` with ``count_scale=1`` and sets ``count_scale`` to the
        number of spikes in ``y`` divided by the predicted number; the network
        is not changed, so correlations stay as they were. Use a few neurons of
        the preparation whose spikes were recorded (e.g. juxtacellularly), then
        predict the others.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs`` of neurons with ground truth, NaN-padded.
        y : array-like of shape (n_traces, n_frames)
            Their spike counts per frame (frames where ``X`` is NaN are ignored).

        Returns
        -------
        self : DeepSpikeInference
            The estimator, with ``count_scale`` set.

        Examples
        --------
        >>> from calgan_sklearn import load_pretrained
        >>> from calgan_sklearn.datasets import make_calcium
        >>> data = make_calcium(n_neurons=4, duration=60.0, fs=30.0, random_state=0)
        >>> model = load_pretrained(fs=30.0).calibrate_counts(data.calcium[:2], data.spikes[:2])
        >>> rates = model.predict(data.calcium[2:])  # counts on the scale of the first two
        """
        check_is_fitted(self)
        X = check_traces(X, min_frames=2)
        y = check_spikes(y, X)
        spikes = float(np.nansum(np.where(np.isnan(X), np.nan, y)))
        if not spikes > 0:
            raise ValueError(
                "y holds no spikes where X has frames, so no count scale can be set from it: "
                "calibrate on neurons whose ground truth has spikes."
            )
        old = self.count_scale
        self.count_scale = 1.0
        try:
            predicted = float(np.nansum(self.predict(X), dtype=np.float64))
        finally:
            self.count_scale = old
        if not predicted > 0:
            raise ValueError(
                f"The model predicts no spikes on these {len(X)} traces while y holds "
                f"{spikes:g}; check that X holds calcium traces at fs={self.fs:g} Hz."
            )
        if spikes < 20:
            warnings.warn(
                f"count_scale rests on {spikes:g} spikes, which makes it uncertain; "
                "calibrate on neurons with more spikes (held out, 2-5 neurons did well).",
                UserWarning,
                stacklevel=2,
            )
        self.count_scale = spikes / predicted
        self.count_units_ = str(self.units)
        return self

    def calibrate_timing(self, X, y, *, alpha=0.01, max_events=5000, random_state=0):
        """Learn from neurons with ground truth where spikes lie within a network frame.

        Above 20 Hz the network estimates expected spikes per group of frames,
        and ``refine_timing`` places them on the group's frames where the
        calcium rises, by a rule that is the same for every indicator. Where
        the spikes lie relative to that rise depends on the indicator's
        kinetics. This fits the placement to the preparation: each frame's
        weight becomes ``exp(timing_features(calcium) @ timing_coef_)``
        (:func:`calgan_sklearn.signal.timing_features`), fitted as a
        conditional logit so that each true spike in ``y`` is found among the
        ``2 * factor + 1`` frames around it. The network and the counts are
        not changed; only the timing within about two network frames is.
        Held out, three neurons per dataset raised the correlation of the
        other neurons from 0.527 to 0.577 over 16 datasets above 20 Hz (15 of
        16 better; jGCaMP8m 0.780 to 0.822, OASIS 0.799;
        ``benchmarks/learned_placement.py``).

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs`` of neurons with ground truth, NaN-padded.
        y : array-like of shape (n_traces, n_frames)
            Their spike counts per frame (frames where ``X`` is NaN are ignored).
        alpha : float, default=0.01
            L2 penalty on the weights.
        max_events : int, default=5000
            Spike frames used at most (drawn at random beyond that).
        random_state : int, default=0
            Seed of that draw.

        Returns
        -------
        self : DeepSpikeInference
            The estimator, with ``timing_coef_`` set.

        Raises
        ------
        ValueError
            If ``fs`` is 20 Hz or less (one input frame per network frame:
            nothing to place), ``refine_timing`` is False, or ``y`` holds no
            spikes away from the traces' ends.

        Examples
        --------
        >>> from calgan_sklearn import load_pretrained
        >>> from calgan_sklearn.datasets import make_calcium
        >>> data = make_calcium(n_neurons=4, duration=60.0, fs=60.0, random_state=0)
        >>> model = load_pretrained(fs=60.0).calibrate_timing(data.calcium[:2], data.spikes[:2])
        >>> model.timing_coef_.shape
        (40,)
        >>> rates = model.predict(data.calcium[2:])  # spikes placed as learned
        """
        from scipy.optimize import minimize
        from scipy.special import logsumexp

        check_is_fitted(self)
        factor = network_rate(self.fs)[0]
        if factor == 1:
            raise ValueError(
                f"At fs={self.fs:g} Hz the network runs on every frame, so there is no "
                "timing within a network frame to calibrate; calibrate_timing serves "
                "recordings above 20 Hz."
            )
        if not self.refine_timing:
            raise ValueError(
                "refine_timing=False spreads spikes evenly and would ignore a calibrated "
                "timing; set refine_timing=True first."
            )
        X = check_traces(X, min_frames=2)
        y = check_spikes(y, X)
        windows, counts = [], []
        offsets = np.arange(-factor, factor + 1)
        for i, n in enumerate(trace_lengths(X)):
            spikes = np.nan_to_num(y[i, :n])
            frames = np.flatnonzero(spikes > 0)
            frames = frames[(frames >= factor) & (frames < n - factor)]
            if len(frames):
                features = timing_features(X[i, :n])
                windows.append(features[frames[:, None] + offsets])
                counts.append(spikes[frames])
        if not windows:
            raise ValueError(
                f"y holds no spikes more than {factor} frames from the ends of the traces "
                "in X, so there is nothing to learn the timing from: calibrate on neurons "
                "whose ground truth has spikes."
            )
        windows, counts = np.concatenate(windows), np.concatenate(counts)
        if len(windows) > max_events:
            keep = np.random.default_rng(random_state).choice(
                len(windows), max_events, replace=False
            )
            windows, counts = windows[keep], counts[keep]
        if len(windows) < 50:
            warnings.warn(
                f"The timing rests on {len(windows)} spike frames, which makes it "
                "uncertain; calibrate on neurons with more spikes (held out, three "
                "neurons per dataset did well).",
                UserWarning,
                stacklevel=2,
            )
        windows = windows.astype(np.float64)
        weights = counts / counts.sum()

        def loss(coef):
            scores = windows @ coef
            norm = logsumexp(scores, axis=1)
            share = np.exp(scores - norm[:, None])
            value = float(weights @ (norm - scores[:, factor])) + alpha * coef @ coef
            expected = np.einsum("ew,ewf->ef", share, windows) - windows[:, factor]
            return value, weights @ expected + 2 * alpha * coef

        result = minimize(loss, np.zeros(windows.shape[2]), jac=True, method="L-BFGS-B")
        self.timing_coef_ = result.x
        self.timing_fs_ = float(self.fs)
        return self

    # -- prediction ------------------------------------------------------------
    def _check_timing_rate(self):
        """Warn when a timing calibration made at one frame rate is used at another."""
        made_at = self.__dict__.get("timing_fs_")
        calibrated = made_at is not None and "timing_coef_" in self.__dict__
        if not calibrated or not self.refine_timing or network_rate(self.fs)[0] == 1:
            return
        if not np.isclose(float(self.fs), made_at, rtol=0.01):
            warnings.warn(
                f"timing_coef_ was calibrated at {made_at:g} Hz and is applied per frame "
                f"at fs={self.fs:g} Hz, where frames last another time. Held out, such "
                "calibrations (rates 2-3x apart) still beat the rise rule on average but "
                "lost 0.01-0.06 correlation to one made at the rate: call calibrate_timing "
                f"with traces at {self.fs:g} Hz.",
                UserWarning,
                stacklevel=3,
            )

    def _check_count_units(self):
        """Warn when a count calibration made in one ``units`` is used in the other."""
        made_in = self.__dict__.get("count_units_")
        if made_in is None or self.count_scale == 1.0 or made_in == self.units:
            return
        names = {"dff": "dF/F", "arbitrary": "arbitrary units"}
        warnings.warn(
            f"count_scale={self.count_scale:.3g} was calibrated on traces read in "
            f"{names.get(made_in, made_in)} and is applied to traces read in "
            f"{names.get(self.units, self.units)} (units={self.units!r}), which the network "
            f"counts differently (held out, by 0.6-6.7x per dataset): predict with "
            f"units={made_in!r} (calgan infer --units {made_in}), or call calibrate_counts "
            f"with units={self.units!r}.",
            UserWarning,
            stacklevel=3,
        )

    def _predict_chunk(self, X, first, network=None, out=None):
        """Rates of a validated chunk of traces (``first``: its first trace's number),
        written into ``out`` (its rows of the output) when given."""
        factor, rate = network_rate(self.fs)
        lengths = trace_lengths(X)
        calcium = [group_means(X[i, :n], factor) for i, n in enumerate(lengths)]
        sds = [noise_sd(c) for c in calcium]
        dff = sds if self.units == "dff" else [None] * len(calcium)
        calcium, noise = self._normalize(calcium, rate, noise_sds=sds)
        stats = [
            (*_statistic_channels(trace_statistics(c, rate), n), *_scale_channels(d))
            for c, n, d in zip(calcium, noise, dff)
        ]
        rates = self._predict_traces(calcium, rate, stats, network=network)
        del calcium  # the normalised traces go before the output comes
        if self.floor_percentile is not None:
            rates = [remove_floor(r, self.floor_percentile) for r in rates]
        if self.count_scale != 1.0:
            for r in rates:
                r *= r.dtype.type(self.count_scale)
        if out is None:
            out = np.empty(X.shape, dtype=np.float32)  # the output's dtype
        for i, n in enumerate(lengths):
            out[i, n:] = np.nan
            if self.refine_timing and factor > 1:
                spread_groups_by_rise(
                    rates[i],
                    X[i, :n],
                    factor,
                    coef=self.__dict__.get("timing_coef_"),
                    out=out[i, :n],
                )
            else:
                out[i, :n] = spread_groups(rates[i], factor, int(n))
            rates[i] = None
        return out

    # -- hooks of BaseKerasEstimator -----------------------------------------
    def _check_data(self, X, y=None, *, reset):
        X, y = self._check_fit_input(X, y, min_frames=2)
        network_rate(self.fs)  # a clear error for frame rates the model cannot serve
        if reset:
            self.n_features_in_ = X.shape[1]
        return X, y

    def _learn_data(self, X, y, **fit_params):
        # the learned state (mean rate, rate ladder, steps) is that of all frames,
        # whatever the per-trace weights and units
        fs = check_fs(self.fs)
        for name in ("timing_coef_", "timing_fs_"):  # a new network: the old calibration goes
            self.__dict__.pop(name, None)
        seconds = trace_lengths(X).sum() / fs
        self.mean_rate_ = float(np.nansum(np.where(np.isnan(X), 0.0, y)) / seconds)
        self.training_rates_ = [r for r in TRAINING_RATES if r <= fs * (1 + 1e-9)]
        if fs < TRAINING_RATES[-1] and fs not in self.training_rates_:
            self.training_rates_.append(fs)
        mean_rate = float(np.mean(self.training_rates_))
        frames = seconds * mean_rate
        self.steps_per_epoch_ = max(
            int(math.ceil(frames / (self.crop_length * self.batch_size))), 1
        )

    def _dilations(self):
        """Dilation of each residual block of the network."""
        return tuple(self.dilation_base**i for i in range(self.depth))

    def _build_model(self, n_members=None, filters=None):
        return build_inference_network(
            filters=self.filters if filters is None else filters,
            kernel_size=self.kernel_size,
            dilations=self._dilations(),
            initial_rate=self.mean_rate_ / float(np.mean(self.training_rates_)),
            dtype=self._dtype_policy(),
            seed=self._seed if n_members is None else self._seed + 7919,
            n_members=self.ensemble_size if n_members is None else n_members,
        )

    def _finish_fit(self, train, *, seed, partial):
        """Distil a trained ensemble into one network (``distill_epochs``)."""
        teacher = self.model_
        if partial or not self.distill_epochs or teacher.output_shape[-1] == 1:
            return
        from keras import layers

        X, y, fit_params = train
        dataset = self._make_dataset(X, y, training=True, seed=seed + 1, **fit_params)
        width = self.filters if self.distill_filters is None else self.distill_filters
        same = width == self.filters
        with self._get_strategy().scope():
            student = self._build_model(n_members=1, filters=width)
            student.name = "spike_inference_distilled"
            if same:
                # the student starts from the first member (its layers have the
                # same names), so distillation refines a trained network
                for layer in student.layers:
                    if layer.weights:
                        layer.set_weights(teacher.get_layer(layer.name).get_weights())
            teacher.trainable = False
            inp = keras.Input(shape=(None, N_CHANNELS))
            both = layers.Concatenate(axis=-1, dtype="float32")([student(inp), teacher(inp)])
            distiller = keras.Model(inp, both)
            schedule = keras.optimizers.schedules.CosineDecay(
                # a third to fine-tune the first member; all of it from scratch
                self.learning_rate / 3.0 if same else self.learning_rate,
                decay_steps=self.steps_per_epoch_ * self.distill_epochs,
                alpha=0.05,
            )
            distiller.compile(
                optimizer=self._make_optimizer(learning_rate=schedule),
                loss=_distillation_mse,
                jit_compile=self._jit_compile(),
            )
        result = distiller.fit(
            dataset, epochs=self.distill_epochs, shuffle=False, verbose=self.verbose
        )
        self.history_["distill_loss"] = [float(v) for v in result.history["loss"]]
        with self._get_strategy().scope():
            self._compile_model(student)  # further training (warm start) trains it
            student.optimizer.build(student.trainable_variables)  # saved and loaded whole
        self.model_ = student

    def _compile_model(self, model):
        schedule = keras.optimizers.schedules.CosineDecay(
            self.learning_rate, decay_steps=self.steps_per_epoch_ * self.epochs, alpha=0.05
        )
        model.compile(
            optimizer=self._make_optimizer(learning_rate=schedule),
            loss=self._loss(),
            jit_compile=self._jit_compile(),
        )

    def _loss(self):
        return member_mse

    def _make_dataset(self, X, y, *, training, seed=None, sample_weight=None, units=None):
        """Crops of the traces ``X`` (training or validation part), drawn per
        ``sample_weight`` and read per ``units`` (per-trace arrays or None)."""
        fs = check_fs(self.fs)
        lengths = trace_lengths(X)
        y = np.nan_to_num(y)
        raw = [X[i, :n] for i, n in enumerate(lengths)]
        smooth = [self._smooth(y[i, :n], fs) for i, n in enumerate(lengths)]
        is_dff = np.full(len(raw), self.units == "dff") if units is None else units == "dff"
        banks = []
        for rate in self.training_rates_:
            calcium = [rebin_frames(c, fs, rate, kind="calcium") for c in raw]
            targets = [rebin_frames(t, fs, rate, kind="counts").astype(np.float32) for t in smooth]
            keep = [len(c) >= 2 for c in calcium]
            calcium = [c if k else np.zeros(2) for c, k in zip(calcium, keep)]
            targets = [t if k else np.zeros(2, np.float32) for t, k in zip(targets, keep)]
            sds = [noise_sd(c) for c in calcium]
            dff = [sd if d else np.nan for sd, d in zip(sds, is_dff)]
            calcium, noise = self._normalize(calcium, rate, noise_sds=sds)
            banks.append(_RateBank(rate, calcium, targets, noise, dff))
        weights = lengths.astype(float)
        if self.sample_weighting == "traces":
            weights = np.ones(len(raw))
        if sample_weight is not None:
            weights = weights * sample_weight
            if not weights.sum() > 0:
                part = "training" if training else "validation"
                raise ValueError(
                    f"sample_weight is zero for all {len(weights)} traces of the {part} "
                    "part; give some of them weight, or set validation_fraction=0."
                )
        steps = self.steps_per_epoch_
        if not training:
            frames = lengths.sum() / fs * float(np.mean(self.training_rates_))
            steps = max(int(math.ceil(frames / (self.crop_length * self.batch_size))), 1)
        return _CropDataset(
            banks,
            crop_length=self.crop_length,
            batch_size=self.batch_size,
            steps=steps,
            noise_range=(1.0, float(self.noise_max)),
            rescale=self.normalize == "noise",
            weights=weights,
            augment=training,
            stretch=float(self.stretch_max),
            lowpass_min_fs=self.lowpass_min_fs,
            slow_noise_max=float(self.slow_noise_max),
            seed=0 if seed is None else seed,
        )

    def _assemble_model(self):
        model = super()._assemble_model()
        inputs, outputs = model.input_shape[-1], model.output_shape[-1]
        expected = 1 if self.distill_epochs else self.ensemble_size
        if inputs != N_CHANNELS or outputs != expected:
            raise ValueError(
                f"the network reads {inputs} input channel(s) and has {outputs} member(s), "
                f"but this DeepSpikeInference expects {N_CHANNELS} (calcium, frame rate, "
                f"trace statistics, dF/F scale) and {expected} network(s) "
                f"(ensemble_size={self.ensemble_size}, distill_epochs={self.distill_epochs}); "
                "the files do not belong together "
                "(or were saved by an older version): train and save the model again"
            )
        return model

    # -- helpers --------------------------------------------------------------
    def _normalize(self, calcium, rate, noise_sds=None):
        return normalize_traces(
            calcium,
            self.normalize,
            baseline_window=self.baseline_window,
            fs=rate,
            noise_sds=noise_sds,
        )

    def _check_units(self, units, X):
        if units is None:
            return None
        units = self._per_trace(units, X, "units", "one of 'dff' or 'arbitrary'", object)
        bad = sorted({str(u) for u in units} - {"dff", "arbitrary"})
        if bad:
            raise ValueError(f"units must be 'dff' or 'arbitrary' per trace; got {bad}.")
        return units

    def _check_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        w = self._per_trace(sample_weight, X, "sample_weight", "one weight", float)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("sample_weight must be finite, non-negative and not all zero.")
        return w

    @staticmethod
    def _per_trace(values, X, name, what, dtype):
        """``values`` as an array of one entry per trace of ``X``."""
        values = np.asarray(values, dtype=dtype)
        n = np.shape(X)[0] if np.ndim(X) > 1 else 1
        if values.shape != (n,):
            raise ValueError(
                f"{name} has shape {values.shape} but X has {n} traces; pass {what} per "
                "trace, shape (n_traces,)."
            )
        return values

    def _smooth(self, spikes, fs):
        sigma = self.target_sigma * fs
        s = np.asarray(spikes, dtype=np.float64)
        if sigma > 0:
            s = gaussian_filter1d(s, sigma, mode="constant")
        return s

    def _predict_traces(self, calcium, rate, stats, max_batch_frames=None, network=None):
        """Run the network on whole traces, batched by similar length.

        Traces longer than :data:`MAX_PIECE_FRAMES` are cut into pieces that
        overlap by the network's receptive field, so each piece's kept frames
        see exactly the context they would see in one pass. A batch holds at
        most ``max_batch_frames`` frames (default 100,000 divided by the
        ensemble size; 2,000,000 on a GPU), which bounds the memory of inference
        whatever the number or length of the traces.
        """
        if max_batch_frames is None:
            frames = BATCH_FRAMES_GPU if gpu_available() else BATCH_FRAMES_CPU
            max_batch_frames = frames // self.model_.output_shape[-1]
        ctx = self._context_frames()
        piece = max(min(MAX_PIECE_FRAMES, max_batch_frames) - 2 * ctx, ctx)
        # (trace, start, stop): the frames a piece predicts
        pieces = []
        for i, c in enumerate(calcium):
            for start in range(0, max(len(c), 1), piece):
                pieces.append((i, start, min(start + piece, len(c))))
        rates = [np.zeros(len(c), np.float32) for c in calcium]
        feature = _rate_feature(rate)
        widths = [min(s1 + ctx, len(calcium[i])) - max(s0 - ctx, 0) for i, s0, s1 in pieces]
        order = np.argsort(widths, kind="stable")
        start = 0
        for stop in range(1, len(order) + 1):
            width = widths[order[stop - 1]] + ctx
            if stop == len(order) or width * (stop - start + 1) > max_batch_frames:
                batch = [pieces[k] for k in order[start:stop]]
                self._predict_batch(calcium, batch, rates, ctx, feature, stats, network)
                start = stop
        return rates

    def _predict_batch(self, calcium, batch, rates, ctx, feature, stats, network=None):
        # zeros beyond every piece's end cover the receptive field, so a trace's
        # rates do not depend on what it is batched with
        spans = [
            (i, max(s0 - ctx, 0), min(s1 + ctx, len(calcium[i])), s0, s1) for i, s0, s1 in batch
        ]
        width = max(b - a for _, a, b, _, _ in spans) + ctx
        x = np.zeros((len(batch), width, N_CHANNELS), np.float32)
        x[:, :, 1] = feature
        for k, (i, a, b, _, _) in enumerate(spans):
            x[k, : b - a, 0] = calcium[i][a:b]
            x[k, :, 2:] = stats[i]
        network = self.model_ if network is None else network
        out = self._predict_network(network, x, batch_size=len(batch))
        out = out.astype(np.float64).mean(axis=-1)  # the ensemble's mean rate
        for k, (i, a, _, s0, s1) in enumerate(spans):
            rates[i][s0:s1] = out[k, s0 - a : s1 - a]

    def _resolve_inference_dtype(self, n_frames):
        """``inference_dtype``, with ``"auto"`` decided for an input of ``n_frames``
        (callers that predict one recording in parts pass the whole's size)."""
        if self.inference_dtype != "auto":
            return self.inference_dtype
        large = n_frames >= BFLOAT16_MIN_FRAMES
        fast = large and native_bfloat16() and not gpu_available()
        return "bfloat16" if fast else "float32"

    def _inference_network(self, n_frames):
        """The network ``predict`` runs on an input of ``n_frames``: ``model_``,
        or a copy with the same weights, in bfloat16 per ``inference_dtype``
        (``"auto"`` decided by ``n_frames``) and, on a CPU under TensorFlow,
        with native dilated convolutions (:class:`NativeDilatedConv1D`)."""
        dtype = self._resolve_inference_dtype(n_frames)
        native = _native_dilations()
        if dtype == "float32" and not native:
            return self.model_
        weights = self.model_.get_weights()
        # a copy is of the weights it was made from: training in place (warm
        # start, partial_fit) or set_weights makes a new one
        version = hashlib.blake2b(b"".join(w.tobytes() for w in weights)).digest()
        twins = _TWINS.setdefault(self.model_, {})
        twin, made_from = twins.get((dtype, native), (None, None))
        if made_from != version:
            first = self.model_.get_layer("input_conv")
            twin = build_inference_network(
                filters=first.filters,  # a distilled width
                kernel_size=self.kernel_size,
                dilations=self._dilations(),
                dtype="mixed_bfloat16" if dtype == "bfloat16" else first.dtype_policy.name,
                n_members=self.model_.output_shape[-1],
                native=native,
            )
            twin.set_weights(weights)
            twins[dtype, native] = twin, version
        return twin

    def _context_frames(self):
        """One-sided receptive field of the network in network frames."""
        return sum(self._dilations()) * (self.kernel_size // 2) + FIRST_KERNEL // 2 + 1
