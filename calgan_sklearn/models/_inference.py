"""Deep trace-level spike inference: a small, fully convolutional network.

The network reads whole calcium traces at a fixed internal rate (100 Hz, the
SpikeFinder rate), so inference costs one pass per trace. A strided first layer
brings the trunk down to 25 Hz (the 40 ms bins of the SpikeFinder metric),
dilated residual convolutions give about 1-2 s of context on each side, and a
depth-to-space output layer returns non-negative rates (expected spikes per
frame) at 100 Hz again. Data at another frame rate is resampled on the way in,
and the rates are re-binned count-preservingly onto the input's frames on the
way out.

Training cuts random crops from the traces on the fly (a
:class:`keras.utils.PyDataset`), adds Gaussian noise to reach random noise
levels so one model serves recordings of different quality, and minimises the
squared error against Gaussian-smoothed spike trains (as CASCADE does),
optionally summed in the 40 ms bins the SpikeFinder metric uses.
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._validation import check_fs, trace_lengths
from ..base import SpikeInferenceMixin
from ._base import COMMON_PARAMETER_CONSTRAINTS, BaseKerasEstimator

__all__ = [
    "DeepSpikeInference",
    "binned_mse",
    "build_inference_network",
    "member_mse",
    "normalize_traces",
]

#: Internal frame rate of the network in Hz.
INTERNAL_FS = 100.0
#: Downsampling factor of the first (strided) layer: the trunk runs at 25 Hz.
STRIDE = 4
#: With ``normalization="noise"``, traces are in units of this many noise SDs,
#: which keeps typical inputs of order 1.
NOISE_UNITS = 10.0
#: Kernel size of the first, strided layer (at 100 Hz).
FIRST_KERNEL = 12


# --------------------------------------------------------------------------- #
# Per-trace normalisation
# --------------------------------------------------------------------------- #
def _noise_sd(x):
    """Robust noise SD of one trace in 40 ms bins (MAD of first differences).

    The trace is averaged in bins of 4 frames (25 Hz) first, so traces that
    were upsampled to 100 Hz (with smooth, correlated frame-to-frame noise)
    are measured on the same footing as traces recorded at 100 Hz.
    """
    k = len(x) // STRIDE * STRIDE
    b = x[:k].reshape(-1, STRIDE).mean(axis=1) if k >= 2 * STRIDE else x
    d = np.diff(b)
    if len(d) == 0:
        return 1.0
    return float(np.median(np.abs(d - np.median(d))) / (0.6745 * math.sqrt(2.0)))


def normalize_traces(traces, method="noise", baseline_percentile=10.0):
    """Normalise each calcium trace so recordings in any units look alike.

    Parameters
    ----------
    traces : list of 1-D ndarray
        Traces at 100 Hz without NaN.
    method : {"noise", "spread"}, default="noise"
        ``"noise"`` divides by ``NOISE_UNITS`` times a robust noise SD (MAD of
        first differences in 40 ms bins); ``"spread"`` divides by the
        difference between the trace's 95th and 5th percentiles.
    baseline_percentile : float, default=10.0
        Percentile of the trace subtracted as its baseline.

    Returns
    -------
    normalized : list of 1-D ndarray of float32
    noise : ndarray of shape (n_traces,)
        Noise SD (in 40 ms bins) of each normalised trace.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models._inference import normalize_traces
    >>> z, noise = normalize_traces([np.random.default_rng(0).normal(5, 2, 4000)])
    >>> round(float(noise[0]), 2)
    0.1
    """
    out, noise = [], []
    for x in traces:
        x = np.asarray(x, dtype=np.float64)
        base = np.percentile(x, baseline_percentile)
        sd = _noise_sd(x)
        if method == "noise":
            scale = sd * NOISE_UNITS
        else:
            p5, p95 = np.percentile(x, [5.0, 95.0])
            scale = p95 - p5
        scale = scale if np.isfinite(scale) and scale > 1e-12 else 1.0
        out.append(((x - base) / scale).astype(np.float32))
        noise.append(sd / scale)
    return out, np.asarray(noise, dtype=float)


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


@keras.saving.register_keras_serializable(package="calgan_sklearn")
def binned_mse(y_true, y_pred):
    """Squared error of rates summed in 40 ms bins (4 frames at 100 Hz).

    Parameters
    ----------
    y_true : tensor of shape (batch, n_frames, 1)
        Target rates; ``n_frames`` a multiple of 4.
    y_pred : tensor of shape (batch, n_frames, n_members)
        Each ensemble member's predicted rates.

    Returns
    -------
    loss : tensor of shape (batch, n_frames)
        Each bin's squared error (averaged over members), shared equally by
        its 4 frames (so per-frame sample weights apply).
    """
    from keras import ops

    def bins(z):
        shape = ops.shape(z)
        return ops.sum(ops.reshape(z, (shape[0], -1, STRIDE, shape[-1])), axis=2)

    err = ops.mean(ops.square(bins(y_true) - bins(y_pred)), axis=-1)
    return ops.repeat(err, STRIDE, axis=1) / STRIDE


def build_inference_network(
    filters=32,
    kernel_size=3,
    dilations=(1, 2, 4, 8, 16),
    first_kernel=FIRST_KERNEL,
    initial_rate=0.01,
    dtype=None,
    seed=None,
    n_members=1,
):
    """Build the fully convolutional spike-inference network (or an ensemble).

    Parameters
    ----------
    filters : int, default=32
        Channels of the trunk.
    kernel_size : int, default=3
        Kernel size of the dilated trunk convolutions (at 25 Hz).
    dilations : sequence of int, default=(1, 2, 4, 8, 16)
        Dilation of each residual block; the context on each side is
        ``sum(dilations) * (kernel_size - 1) / 2`` trunk steps of 40 ms.
    first_kernel : int, default=12
        Kernel size of the first, strided layer (at 100 Hz).
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

    Returns
    -------
    model : keras.Model
        Maps ``(batch, n_frames, 1)`` normalised calcium at 100 Hz, with
        ``n_frames`` a multiple of 4, to ``(batch, n_frames, n_members)``
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

    inp = keras.Input(shape=(None, 1), name="calcium")
    bias = float(np.log(np.expm1(max(float(initial_rate), 1e-6))))
    outputs = []
    for m in range(n_members):
        # member 0 keeps the single network's layer names and seeds
        tag = "" if m == 0 else f"_m{m}"
        base = None if seed is None else seed + 1000 * m

        def init(i, base=base):
            return keras.initializers.GlorotUniform(seed=None if base is None else base + i)

        x = layers.Conv1D(
            filters,
            first_kernel,
            strides=STRIDE,
            padding="same",
            activation="relu",
            kernel_initializer=init(0),
            dtype=dtype,
            name=f"downsample{tag}",
        )(inp)
        for i, d in enumerate(dilations):
            h = layers.Conv1D(
                filters,
                kernel_size,
                dilation_rate=int(d),
                padding="same",
                activation="relu",
                kernel_initializer=init(i + 1),
                dtype=dtype,
                name=f"dilated_{i}{tag}",
            )(x)
            h = layers.Conv1D(
                filters, 1, kernel_initializer=init(100 + i), dtype=dtype, name=f"mix_{i}{tag}"
            )(h)
            x = layers.Add(dtype=dtype, name=f"residual_{i}{tag}")([x, h])
            x = layers.Activation("relu", dtype=dtype, name=f"relu_{i}{tag}")(x)
        x = layers.Conv1D(
            STRIDE,
            1,
            activation="softplus",
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(bias),
            dtype="float32",
            name=f"rates_25hz{tag}",
        )(x)
        outputs.append(layers.Reshape((-1, 1), dtype="float32", name=f"rates{tag}")(x))
    out = outputs[0]
    if n_members > 1:
        out = layers.Concatenate(axis=-1, dtype="float32", name="members")(outputs)
    return keras.Model(inp, out, name="spike_inference")


# --------------------------------------------------------------------------- #
# Data pipeline
# --------------------------------------------------------------------------- #
class _CropDataset(keras.utils.PyDataset):
    """Random (augmented) crops cut from whole traces on the fly.

    Each batch holds ``batch_size`` crops of ``crop_length`` frames; traces
    shorter than a crop are zero-padded and masked by a zero sample weight.
    With ``augment``, Gaussian noise raises each crop's noise SD by a random
    factor ``m`` in ``noise_range`` (and, for noise-normalised traces, the crop
    is divided by ``m`` so its noise stays at one unit). With ``lowpass_min_fs``
    a share (``lowpass_share``) of the augmented crops are then low-pass
    filtered as if they had been recorded at a random frame rate between
    ``lowpass_min_fs`` and 90 Hz and upsampled (and, for noise-normalised
    traces, renormalised by their new noise level, as
    :func:`normalize_traces` would). Without ``augment`` the
    crops are the same on every pass (for validation).
    """

    #: Share of the augmented crops that are low-pass filtered.
    lowpass_share = 0.25

    def __init__(
        self,
        calcium,
        targets,
        noise,
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
        seed=0,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.calcium, self.targets, self.noise = calcium, targets, noise
        self.crop_length, self.batch_size, self.steps = crop_length, batch_size, steps
        self.noise_range, self.rescale, self.augment = noise_range, rescale, augment
        self.stretch, self.lowpass_min_fs = stretch, lowpass_min_fs
        lengths = np.array([len(c) for c in calcium], dtype=float)
        w = lengths if weights is None else np.asarray(weights, dtype=float)
        self.p = w / w.sum()
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __getitem__(self, idx):
        rng = self.rng if self.augment else np.random.default_rng([self.seed, idx])
        L, B = self.crop_length, self.batch_size
        x = np.zeros((B, L, 1), np.float32)
        y = np.zeros((B, L, 1), np.float32)
        w = np.zeros((B, L), np.float32)
        for b, i in enumerate(rng.choice(len(self.calcium), size=B, p=self.p)):
            c, t = self._cut(i, rng)
            if self.augment:
                m = rng.uniform(*self.noise_range)
                # white noise at 100 Hz: its SD halves in bins of 4 frames
                extra = 2.0 * self.noise[i] * math.sqrt(max(m * m - 1.0, 0.0))
                if extra > 0:
                    c = c + rng.normal(0.0, extra, size=len(c)).astype(np.float32)
                if self.rescale:
                    c = c / np.float32(m)
                if self.lowpass_min_fs is not None and rng.random() < self.lowpass_share:
                    c = self._lowpass(c, rng)
            x[b, : len(c), 0] = c
            y[b, : len(c), 0] = t
            w[b, : len(c)] = 1.0
        return x, y, w

    def _lowpass(self, c, rng):
        """Low-pass ``c`` as if recorded at a random, lower frame rate."""
        from scipy.signal import butter, sosfiltfilt

        if len(c) < 64:
            return c
        hi = 0.9 * INTERNAL_FS
        lo = min(float(self.lowpass_min_fs), hi)
        native = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        # zero-phase, so the filter does not shift the calcium against the spikes
        sos = butter(4, native / INTERNAL_FS, output="sos")
        out = sosfiltfilt(sos, c.astype(np.float64), padtype="even")
        if self.rescale:
            # what normalize_traces would make of such a recording: noise of
            # one unit (1 / NOISE_UNITS) measured on the filtered trace itself
            sd = _noise_sd(out)
            if np.isfinite(sd) and sd > 0:
                out = out * min(1.0 / (NOISE_UNITS * sd), 100.0)
        return out.astype(np.float32)

    def _cut(self, i, rng):
        """One crop of trace ``i`` (time-stretched by a random factor if augmenting)."""
        n, L = len(self.calcium[i]), self.crop_length
        a = 1.0
        if self.augment and self.stretch > 1.0:
            a = math.exp(rng.uniform(-math.log(self.stretch), math.log(self.stretch)))
        span = min(int(math.ceil(L / a)), n)
        start = int(rng.integers(0, n - span + 1))
        c = self.calcium[i][start : start + span]
        t = self.targets[i][start : start + span]
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

    The network is fully convolutional over whole traces, so inference is one
    batched pass per trace. It works at 100 Hz internally: traces at another
    ``fs`` are resampled on the way in, and the rates are re-binned onto the
    input's frames (preserving the total rate) on the way out. Each trace is
    normalised on its own (baseline subtracted, divided by its noise level),
    so dF/F traces and traces in arbitrary units are treated alike.

    Parameters
    ----------
    fs : float, default=100.0
        Frame rate of the traces passed to ``fit`` and ``predict``, in Hz.
    filters : int, default=32
        Channels of the convolutional trunk.
    kernel_size : int, default=3
        Kernel size of the dilated convolutions (trunk at 25 Hz).
    depth : int, default=6
        Number of dilated residual blocks; block ``i`` has dilation
        ``dilation_base ** i``. With the defaults the network sees
        ``(2**6 - 1) * 40 ms = 2.5 s`` of context on each side.
    dilation_base : int, default=2
        Growth factor of the dilation from block to block.
    normalization : {"noise", "spread"}, default="noise"
        Per-trace normalisation: subtract a low percentile as baseline and
        divide by the robust noise SD (``"noise"``) or by the 5-95 percentile
        spread (``"spread"``).
    loss : {"mse", "binned_mse"}, default="mse"
        Squared error against the smoothed spike train per 100 Hz frame
        (``"mse"``) or summed in the metric's 40 ms bins (``"binned_mse"``).
    target_sigma : float, default=0.04
        Width (s) of the Gaussian that smooths the spike trains used as
        training targets.
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
        ``lowpass_min_fs`` and 90 Hz (log-uniform) and upsampled to 100 Hz, so
        the network also serves recordings made at low frame rates and
        resampled (e.g. SpikeFinder dataset 4, recorded at about 8 Hz); None
        disables it.
    crop_length : int, default=1024
        Length of the training crops in 100 Hz frames (rounded up to a multiple
        of 4).
    sample_weighting : {"frames", "traces"}, default="frames"
        Crops are drawn from a trace with probability proportional to its
        length (``"frames"``) or with equal probability per trace.
    ensemble_size : int, default=3
        Independent networks trained side by side from different initial
        weights on the same crops; ``predict`` returns the mean of their rates.
        Averaging reduces the variance between training runs; training and
        inference cost grow in proportion.
    epochs : int, default=20
        Passes over the training frames: each epoch draws about as many crop
        frames as there are training frames.
    batch_size : int, default=32
        Crops per gradient step.
    learning_rate : float, default=3e-3
        Initial Adam learning rate, decayed with a cosine schedule.
    validation_fraction : float, default=0.0
        Fraction of the traces held out for early stopping; 0 disables it.
    patience : int, default=5
        Epochs without improvement of the validation loss before stopping.
    callbacks : list of keras.callbacks.Callback or None, default=None
        Extra Keras callbacks.
    verbose : int, default=0
        0 is silent, 1 shows a progress bar per epoch, 2 one line per epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation, crop sampling and noise.
    warm_start : bool, default=False
        If True, ``fit`` on a fitted estimator continues training.
    mixed_precision : bool, default=False
        Compute the hidden layers in reduced precision.
    jit_compile : bool, default=False
        Compile the training step with XLA.
    distribute : bool, default=False
        Train under ``tf.distribute.MirroredStrategy`` over all visible GPUs.

    Attributes
    ----------
    model_ : keras.Model
        The fitted network: normalised 100 Hz calcium to rates per frame.
    history_ : dict of str to list of float
        Training (and validation) loss per epoch.
    n_iter_ : int
        Epochs trained.
    mean_rate_ : float
        Mean spike rate per 100 Hz frame of the training data.
    steps_per_epoch_ : int
        Gradient steps per epoch.
    n_features_in_ : int
        Number of frames (columns) of the training array.

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
    >>> est = DeepSpikeInference(filters=8, depth=2, epochs=1, random_state=0)
    >>> est.fit(calcium, spikes).predict(calcium).shape
    (4, 2000)
    """

    _parameter_constraints: dict = {
        **COMMON_PARAMETER_CONSTRAINTS,
        "fs": [Interval(numbers.Real, 0, None, closed="neither")],
        "filters": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 0, None, closed="left")],
        "dilation_base": [Interval(numbers.Integral, 1, None, closed="left")],
        "normalization": [StrOptions({"noise", "spread"})],
        "loss": [StrOptions({"mse", "binned_mse"})],
        "target_sigma": [Interval(numbers.Real, 0, None, closed="left")],
        "noise_max": [Interval(numbers.Real, 1, None, closed="left")],
        "stretch_max": [Interval(numbers.Real, 1, None, closed="left")],
        "lowpass_min_fs": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "crop_length": [Interval(numbers.Integral, 8, None, closed="left")],
        "sample_weighting": [StrOptions({"frames", "traces"})],
        "ensemble_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }
    _min_samples = 1

    def __init__(
        self,
        fs=100.0,
        *,
        filters=32,
        kernel_size=3,
        depth=6,
        dilation_base=2,
        normalization="noise",
        loss="mse",
        target_sigma=0.04,
        noise_max=3.0,
        stretch_max=2.0,
        lowpass_min_fs=5.0,
        crop_length=1024,
        sample_weighting="frames",
        ensemble_size=3,
        epochs=20,
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
        self.normalization = normalization
        self.loss = loss
        self.target_sigma = target_sigma
        self.noise_max = noise_max
        self.stretch_max = stretch_max
        self.lowpass_min_fs = lowpass_min_fs
        self.crop_length = crop_length
        self.sample_weighting = sample_weighting
        self.ensemble_size = ensemble_size
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
    def fit(self, X, y, sample_weight=None):
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
            E.g. ``1 / frames of the trace's dataset`` balances datasets.

        Returns
        -------
        self : DeepSpikeInference
            The fitted estimator.
        """
        self._trace_weight = self._check_sample_weight(sample_weight, X)
        try:
            return self._fit(X, y)
        finally:
            del self._trace_weight

    def predict(self, X):
        """Spike rates (expected spikes per frame) on the input's frames.

        Parameters
        ----------
        X : array-like of shape (n_traces, n_frames)
            Calcium traces at ``fs``, NaN-padded at the end.

        Returns
        -------
        rates : ndarray of shape (n_traces, n_frames)
            Non-negative rates, NaN exactly where ``X`` is NaN.
        """
        check_is_fitted(self)
        X = self._check_predict_input(X)
        calcium, _ = self._to_internal(X)
        calcium, _ = normalize_traces(calcium, self.normalization)
        rates = self._predict_traces(calcium)
        return self._to_input_frames(rates, X)

    # -- hooks of BaseKerasEstimator -----------------------------------------
    def _check_data(self, X, y=None, *, reset):
        X, y = self._check_fit_input(X, y, min_frames=2)
        if reset:
            self.n_features_in_ = X.shape[1]
        return X, y

    def _learn_data(self, X, y):
        fs = check_fs(self.fs)
        frames = trace_lengths(X).sum() * INTERNAL_FS / fs
        self.mean_rate_ = float(np.nansum(np.where(np.isnan(X), 0.0, y)) / frames)
        crop = self._crop()
        self.steps_per_epoch_ = max(int(math.ceil(frames / (crop * self.batch_size))), 1)

    def _build_model(self):
        dilations = tuple(self.dilation_base**i for i in range(self.depth))
        return build_inference_network(
            filters=self.filters,
            kernel_size=self.kernel_size,
            dilations=dilations,
            initial_rate=self.mean_rate_,
            dtype=self._dtype_policy(),
            seed=self._seed,
            n_members=self.ensemble_size,
        )

    def _compile_model(self, model):
        schedule = keras.optimizers.schedules.CosineDecay(
            self.learning_rate, decay_steps=self.steps_per_epoch_ * self.epochs, alpha=0.05
        )
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss=self._loss(),
            jit_compile=self.jit_compile,
        )

    def _loss(self):
        return binned_mse if self.loss == "binned_mse" else member_mse

    def _make_dataset(self, X, y, *, training, seed=None):
        calcium, spikes = self._to_internal(X, y)
        calcium, noise = normalize_traces(calcium, self.normalization)
        targets = [self._smooth(s) for s in spikes]
        weights = np.array([len(c) for c in calcium], dtype=float)
        if self.sample_weighting == "traces":
            weights = np.ones(len(calcium))
        if training and getattr(self, "_trace_weight", None) is not None:
            weights = weights * self._trace_weight
        crop = self._crop()
        steps = self.steps_per_epoch_
        if not training:
            frames = sum(len(c) for c in calcium)
            steps = max(int(math.ceil(frames / (crop * self.batch_size))), 1)
        return _CropDataset(
            calcium,
            targets,
            noise,
            crop_length=crop,
            batch_size=self.batch_size,
            steps=steps,
            noise_range=(1.0, float(self.noise_max)),
            rescale=self.normalization == "noise",
            weights=weights,
            augment=training,
            stretch=float(self.stretch_max),
            lowpass_min_fs=self.lowpass_min_fs,
            seed=0 if seed is None else seed,
        )

    # -- helpers --------------------------------------------------------------
    def _check_sample_weight(self, sample_weight, X):
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=float)
        n = np.shape(X)[0] if np.ndim(X) > 1 else 1
        if w.shape != (n,):
            raise ValueError(
                f"sample_weight has shape {w.shape} but X has {n} traces; pass one "
                "weight per trace, shape (n_traces,)."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("sample_weight must be finite, non-negative and not all zero.")
        if self.validation_fraction:
            raise ValueError(
                "sample_weight cannot be combined with validation_fraction > 0; hold "
                "out validation traces yourself or set validation_fraction=0."
            )
        return w

    def _crop(self):
        return int(math.ceil(self.crop_length / STRIDE) * STRIDE)

    def _to_internal(self, X, y=None):
        """Lists of the finite part of each trace at the internal rate."""
        fs = check_fs(self.fs)
        Xi = self._resample(X, fs, INTERNAL_FS, kind="calcium")
        li = trace_lengths(Xi)
        calcium = [Xi[i, : li[i]] for i in range(len(X))]
        if y is None:
            return calcium, None
        y = np.where(np.isnan(X), np.nan, np.nan_to_num(y))
        yi = self._resample(y, fs, INTERNAL_FS, kind="counts", n_out=li)
        return calcium, [yi[i, : li[i]] for i in range(len(X))]

    def _to_input_frames(self, rates, X):
        """Rates at 100 Hz back onto the input's frames, preserving totals."""
        from ..datasets._resample import rebin_counts

        fs = check_fs(self.fs)
        same = np.isclose(fs, INTERNAL_FS, rtol=1e-9, atol=0)
        out = np.full(X.shape, np.nan)
        for i, n in enumerate(trace_lengths(X)):
            r = rates[i] if same else rebin_counts(rates[i], INTERNAL_FS, fs, n_out=int(n))
            out[i, :n] = r[:n]
        return out

    def _smooth(self, spikes):
        sigma = self.target_sigma * INTERNAL_FS
        s = np.asarray(spikes, dtype=np.float64)
        if sigma > 0:
            s = gaussian_filter1d(s, sigma, mode="constant")
        return s.astype(np.float32)

    def _predict_traces(self, calcium, max_batch_frames=None):
        """Run the network on whole traces, batched by similar length.

        A batch holds at most ``max_batch_frames`` frames (default 750,000
        divided by the ensemble size), which bounds the memory of inference
        (about 0.7 GB above the model's) whatever the number of traces.
        """
        if max_batch_frames is None:
            max_batch_frames = 750_000 // self.ensemble_size
        order = np.argsort([len(c) for c in calcium], kind="stable")
        rates = [None] * len(calcium)
        start = 0
        for stop in range(1, len(order) + 1):
            width = _round_up(len(calcium[order[stop - 1]]), STRIDE)
            if stop == len(order) or width * (stop - start + 1) > max_batch_frames:
                self._predict_batch(calcium, order[start:stop], rates)
                start = stop
        return rates

    def _predict_batch(self, calcium, batch, rates):
        # zeros beyond every trace's end cover the receptive field, so a trace's
        # rates do not depend on what it is batched with
        width = _round_up(max(len(calcium[i]) for i in batch) + self._context_frames(), STRIDE)
        x = np.zeros((len(batch), width, 1), np.float32)
        for b, i in enumerate(batch):
            x[b, : len(calcium[i]), 0] = calcium[i]
        # the ensemble's rate is the mean of its members' rates
        out = self._predict_network(self.model_, x, batch_size=len(batch))
        out = out.astype(np.float64).mean(axis=-1)
        for b, i in enumerate(batch):
            rates[i] = out[b, : len(calcium[i])]

    def _context_frames(self):
        """One-sided receptive field of the network in 100 Hz frames."""
        dilations = sum(self.dilation_base**i for i in range(self.depth))
        return STRIDE * (dilations * (self.kernel_size // 2) + 2) + FIRST_KERNEL


def _round_up(n, k):
    return int(math.ceil(max(n, 1) / k) * k)
