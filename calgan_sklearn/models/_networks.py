"""Small, registered, serialisable Keras layers and network builders.

Every network of the window-level estimators is built here, so the GAN's
critic and :class:`~calgan_sklearn.models.SpikeClassifier` share one trunk
builder (which is what lets a classifier start from a fitted critic), and every
custom layer can be saved to and loaded from the ``.keras`` format with
``safe_mode=True``.

Windows enter the networks as ``(batch, window_length, channels)`` tensors;
channel 0 is fluorescence, further channels (GAN only) carry the condition.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

__all__ = [
    "ConditionalWGAN",
    "TraceWGAN",
    "ChannelSlice",
    "CropToLength",
    "GaussianSampling",
    "build_conv_trunk",
    "build_classifier",
    "build_critic",
    "build_generator",
    "build_trace_generator",
    "build_encoder",
    "build_decoder",
    "copy_trunk_weights",
]

_PACKAGE = "calgan_sklearn"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CropToLength(layers.Layer):
    """Keep the first ``length`` steps of a ``(batch, steps, channels)`` tensor.

    Upsampling stacks produce ``ceil(L / 2**depth) * 2**depth`` steps; this
    crops them back to the window length ``L``.

    Parameters
    ----------
    length : int
        Number of steps to keep.
    """

    def __init__(self, length, **kwargs):
        super().__init__(**kwargs)
        self.length = int(length)

    def call(self, inputs):
        return inputs[:, : self.length, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.length, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "length": self.length}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResponseCurve(layers.Layer):
    """A static nonlinearity of the spike response, one per style (not trained).

    ``form="power"``: ``f(v) = a (min(v, vmax)**p + p vmax**(p - 1) max(v - vmax, 0))``
    above zero and ``a v`` below: fluorescence as a power ``p`` of a linear
    calcium response, so single spikes give small, brief transients and bursts
    large ones, continued along its tangent above ``vmax``.
    ``form="quadratic"`` (GANs saved before the power form):
    ``f(v) = a1 v + a2 (min(max(v, 0), vmax)**2 + 2 vmax max(v - vmax, 0))``.
    The coefficients of each style, ``(a, p, vmax)`` or ``(a1, a2, vmax)``, are
    set after building (``set_weights``); inputs are the response
    ``(batch, steps, 1)`` and, with several styles, the one-hot styles
    ``(batch, steps, n_styles)``.

    Parameters
    ----------
    n_styles : int, default=1
    form : {"quadratic", "power"}, default="quadratic"
    """

    def __init__(self, n_styles=1, form="quadratic", **kwargs):
        super().__init__(**kwargs)
        if form not in ("quadratic", "power"):
            raise ValueError(f"form must be 'quadratic' or 'power', got {form!r}.")
        self.n_styles = int(n_styles)
        self.form = form

    def build(self, input_shape):
        identity = [1.0, 1.0 if self.form == "power" else 0.0, 1.0]
        self.coef = self.add_weight(
            shape=(self.n_styles, 3),
            initializer=keras.initializers.Constant(identity),
            trainable=False,
            name="coef",
        )

    def call(self, inputs):
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            v, style = inputs
            coef = ops.einsum("bts,sc->btc", ops.cast(style, "float32"), self.coef)
        else:
            v = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            coef = self.coef[0]
        a, b, vmax = coef[..., 0:1], coef[..., 1:2], coef[..., 2:3]
        if self.form == "power":
            inside = ops.minimum(ops.maximum(v, 1e-12), vmax)
            tail = b * ops.power(vmax, b - 1.0) * ops.relu(v - vmax)
            return a * (ops.power(inside, b) + tail + ops.minimum(v, 0.0))
        inside = ops.minimum(ops.maximum(v, 0.0), vmax)
        return a * v + b * (inside**2 + 2.0 * vmax * ops.relu(v - vmax))

    def compute_output_shape(self, input_shape):
        return input_shape[0] if isinstance(input_shape, list) else input_shape

    def get_config(self):
        return {**super().get_config(), "n_styles": self.n_styles, "form": self.form}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class KernelPick(layers.Layer):
    """One-hot choice of one of ``n_kernels`` response kernels per trace.

    Inputs: a ``(batch, steps, 1)`` standard normal code, constant over a
    trace, and optionally ``(batch, steps, n_styles)`` one-hot styles. The
    code's normal CDF, cut into ``n_kernels`` equal bins, picks the kernel;
    the output ``(batch, steps, n_styles * n_kernels)`` is one-hot at
    ``style * n_kernels + pick``, so each trace gets one of its style's kernels,
    all equally likely.

    Parameters
    ----------
    n_kernels : int
    """

    def __init__(self, n_kernels, **kwargs):
        super().__init__(**kwargs)
        self.n_kernels = int(n_kernels)

    def call(self, inputs):
        code = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        u = 0.5 * (1.0 + ops.erf(ops.cast(code, "float32") / math.sqrt(2.0)))
        pick = ops.minimum(ops.floor(u * self.n_kernels), self.n_kernels - 1)
        onehot = ops.cast(ops.equal(pick, ops.arange(self.n_kernels, dtype="float32")), "float32")
        if not isinstance(inputs, (list, tuple)) or len(inputs) == 1:
            return onehot
        style = ops.cast(inputs[1], "float32")
        both = style[..., :, None] * onehot[..., None, :]
        shape = ops.shape(both)
        return ops.reshape(both, (shape[0], shape[1], shape[2] * self.n_kernels))

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, list) and len(input_shape) == 2:
            return (*input_shape[0][:2], input_shape[1][2] * self.n_kernels)
        shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        return (*shape[:2], self.n_kernels)

    def get_config(self):
        return {**super().get_config(), "n_kernels": self.n_kernels}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ChannelSlice(layers.Layer):
    """Channels ``start:stop`` of a ``(batch, steps, channels)`` tensor.

    Parameters
    ----------
    start : int
    stop : int or None, default=None
    """

    def __init__(self, start, stop=None, **kwargs):
        super().__init__(**kwargs)
        self.start = int(start)
        self.stop = None if stop is None else int(stop)

    def call(self, inputs):
        return inputs[:, :, self.start : self.stop]

    def compute_output_shape(self, input_shape):
        n = len(range(input_shape[2])[self.start : self.stop])
        return (input_shape[0], input_shape[1], n)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GaussianSampling(layers.Layer):
    """Reparameterised draw ``z = mean + exp(log_var / 2) * eps`` with a KL penalty.

    The layer adds ``beta * KL(q(z|x) || N(0, I))`` (mean over the batch) to the
    model's losses in training and returns the mean at inference, so a
    variational autoencoder trains with the ordinary ``compile``/``fit``.

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term (beta-VAE).
    seed : int or None, default=None
        Seed of the layer's random generator.
    """

    def __init__(self, beta=1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.beta = float(beta)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        mean, log_var = inputs
        kl = -0.5 * ops.mean(ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1))
        self.add_loss(self.beta * kl)
        if not training:
            return mean
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator, dtype=mean.dtype)
        return mean + ops.exp(0.5 * log_var) * eps

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "seed": self.seed}


def _policy(dtype):
    """Layer dtype policy: ``None`` means Keras' global default."""
    return dtype


def build_conv_trunk(inputs, *, filters, kernel_size, depth, dtype=None, prefix="trunk"):
    """Strided 1-D convolution stack shared by the critic, classifier and encoder.

    Each of the ``depth`` blocks is ``Conv1D(filters * 2**i, kernel_size,
    strides=2, padding="same")`` followed by a leaky ReLU, so any window length
    (down to one frame) is accepted. Layers are named ``{prefix}_conv{i}`` so
    weights can be copied between networks built by this function
    (:func:`copy_trunk_weights`). No batch normalisation: the WGAN-GP gradient
    penalty is defined per sample.

    Parameters
    ----------
    inputs : KerasTensor of shape (batch, window_length, channels)
    filters, kernel_size, depth : int
        Width of the first block, kernel size, number of blocks.
    dtype : str or keras.DTypePolicy, default=None
        Dtype policy of the layers (e.g. ``"mixed_float16"``).
    prefix : str, default="trunk"

    Returns
    -------
    KerasTensor of shape (batch, window_length * filters) after flattening.
    """
    x = inputs
    for i in range(depth):
        x = layers.Conv1D(
            filters * 2**i,
            kernel_size,
            strides=2,
            padding="same",
            dtype=_policy(dtype),
            name=f"{prefix}_conv{i}",
        )(x)
        x = layers.LeakyReLU(0.2, dtype=_policy(dtype), name=f"{prefix}_act{i}")(x)
    return layers.Flatten(dtype=_policy(dtype), name=f"{prefix}_flatten")(x)


def build_classifier(
    window_length, n_classes, *, filters, kernel_size, depth, dropout=0.0, dtype=None
):
    """Window classifier: :func:`build_conv_trunk` and a linear logit head.

    Returns a ``keras.Model`` mapping ``(batch, window_length, 1)`` to
    ``(batch, n_classes)`` logits (float32 even under mixed precision).
    """
    inputs = keras.Input((window_length, 1), name="window")
    x = build_conv_trunk(
        inputs, filters=filters, kernel_size=kernel_size, depth=depth, dtype=dtype
    )
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(n_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="spike_classifier")


def build_critic(window_length, n_cond_channels, *, filters, kernel_size, depth, dtype=None):
    """WGAN critic: the classifier trunk on fluorescence + condition features, one score.

    Input is ``(batch, window_length, 1 + n_cond_channels)``; channel 0 is the
    fluorescence. The condition channels first pass a causal convolution as long
    as the window (``cond_response``), which can learn the transient a spike
    should cause, so the trunk can compare expected and observed fluorescence.
    Channel 0 stays first, so the trunk's weights for it transfer to a classifier.
    """
    inputs = keras.Input((window_length, 1 + n_cond_channels), name="window_and_condition")
    x = inputs
    if n_cond_channels:
        signal = ChannelSlice(0, 1, name="signal")(inputs)
        cond = ChannelSlice(1, None, name="condition")(inputs)
        response = layers.Conv1D(
            filters, window_length, padding="causal", dtype=_policy(dtype), name="cond_response"
        )(cond)
        x = layers.Concatenate(name="signal_and_response")([signal, response])
    x = build_conv_trunk(x, filters=filters, kernel_size=kernel_size, depth=depth, dtype=dtype)
    score = layers.Dense(1, dtype="float32", name="score")(x)
    return keras.Model(inputs, score, name="critic")


def _upsampling_stack(x, *, window_length, filters, kernel_size, depth, dtype, prefix):
    """Dense seed -> ``depth`` x (upsample, conv, leaky ReLU) -> crop to the window."""
    n0 = max(1, math.ceil(window_length / 2**depth))
    width = filters
    x = layers.Dense(n0 * width, dtype=_policy(dtype), name=f"{prefix}_seed")(x)
    x = layers.LeakyReLU(0.2, dtype=_policy(dtype), name=f"{prefix}_seed_act")(x)
    x = layers.Reshape((n0, width), name=f"{prefix}_reshape")(x)
    for i in range(depth):
        x = layers.UpSampling1D(2, name=f"{prefix}_up{i}")(x)
        x = layers.Conv1D(
            filters, kernel_size, padding="same", dtype=_policy(dtype), name=f"{prefix}_conv{i}"
        )(x)
        x = layers.LeakyReLU(0.2, dtype=_policy(dtype), name=f"{prefix}_act{i}")(x)
    return CropToLength(window_length, name=f"{prefix}_crop")(x)


def n_dilated_layers(window_length, kernel_size):
    """Causal dilated layers (dilations 1, 2, 4, ...) needed to see the whole window."""
    reach, n = 1, 0
    while reach < window_length and n < 12:
        reach += (kernel_size - 1) * 2**n
        n += 1
    return max(n, 1)


def build_generator(
    window_length, latent_dim, n_cond_channels, *, filters, kernel_size, depth, dtype=None
):
    """Generator: noise -> upsampled features; condition -> causal dilated convolutions.

    The noise path renders slow structure (baseline, drift, noise texture). When
    conditioned, the condition channels (spike counts per frame, or a one-hot
    class broadcast over the window) are concatenated to those features and pass
    through causal convolutions with dilations 1, 2, 4, ... whose receptive field
    covers the window, so a spike can drive a transient that rises and decays
    after it. Output is ``(batch, window_length, 1)`` in normalised units.
    """
    z = keras.Input((latent_dim,), name="noise")
    inputs = [z]
    x = _upsampling_stack(
        z,
        window_length=window_length,
        filters=filters,
        kernel_size=kernel_size,
        depth=depth,
        dtype=dtype,
        prefix="gen",
    )
    if n_cond_channels:
        cond = keras.Input((window_length, n_cond_channels), name="condition")
        inputs.append(cond)
        x = layers.Concatenate(name="gen_concat")([x, cond])
    for i in range(n_dilated_layers(window_length, kernel_size)):
        x = _causal_dilated(x, filters, kernel_size, i, dtype)
    out = layers.Conv1D(1, 1, dtype="float32", name="gen_out")(x)
    if n_cond_channels:
        # linear impulse response of the condition (the calcium kernel for spikes)
        response = layers.Conv1D(
            1, window_length, padding="causal", dtype="float32", name="gen_response"
        )(cond)
        out = layers.Add(name="gen_add_response")([out, response])
    return keras.Model(inputs if len(inputs) > 1 else z, out, name="generator")


def _causal_dilated(x, filters, kernel_size, i, dtype):
    """The generators' ``i``-th causal convolution (dilation ``2**i``) and its LeakyReLU."""
    x = layers.Conv1D(
        filters,
        kernel_size,
        padding="causal",
        dilation_rate=2**i,
        dtype=_policy(dtype),
        name=f"gen_dilated{i}",
    )(x)
    return layers.LeakyReLU(0.2, dtype=_policy(dtype), name=f"gen_dilated_act{i}")(x)


def build_trace_generator(
    n_noise,
    code_dim,
    *,
    filters,
    kernel_size,
    n_dilated,
    response_length,
    slow_frames,
    n_cond=2,
    n_styles=0,
    n_kernels=1,
    curve=False,
    curve_form="quadratic",
    dtype=None,
):
    """Whole-trace generator: spike trains -> normalised fluorescence, any length.

    Fully convolutional and causal, so it renders traces of any number of frames.
    Inputs, all ``(batch, n_frames, channels)``:

    - ``condition`` (``n_cond`` channels): spike counts per frame, the trace's
      standardised log noise level and (``n_cond >= 3``) its standardised log
      activity spread and (if ``n_cond - n_styles == 4``) its predicted log
      response gain (all constant over time), then (``n_styles > 0``) a one-hot
      style label per trace, the last ``n_styles`` channels;
    - ``noise`` (``n_noise`` channels): white Gaussian noise per frame (or,
      in the last channel, a stretch of real residual noise:
      ``CalciumGAN(trace_noise="residual")``); a moving average of
      ``slow_frames`` frames of channel 0 is added as one more channel (slow
      fluctuations, baseline drift);
    - ``code`` (``code_dim`` channels): a per-trace Gaussian code, constant
      over time (per-neuron differences: amplitude, kinetics, noise colour).

    Three paths are added: a linear causal response of ``response_length``
    frames to the spikes (``gen_response``: the calcium kernel), scaled by a
    per-trace gain ``exp(dense(code, levels))``; a linear map of the inputs
    (``gen_skip``: white noise, offset); and a residual stack of causal dilated
    convolutions (``gen_dilated{i}``, dilations 1, 2, 4, ...), whose
    receptive field ``1 + (kernel_size - 1) * (2**n_dilated - 1)`` frames lets
    a spike drive a transient that rises and decays, with nonlinearity for
    bursts, amplitude jitter and coloured noise. Its output layer starts at
    zero, so the untrained generator is the linear model.

    With styles, ``gen_response`` holds one kernel per style and each trace
    takes its own style's (``gen_response_select``), so each style starts
    from its own linear model. With ``n_kernels > 1`` it holds that many per
    style (neurons' own kinetics), and each trace takes one of its style's,
    picked by its code's first channel (:class:`KernelPick`). With
    ``curve``, the scaled response passes a static nonlinearity per style
    (``gen_curve``, :class:`ResponseCurve` of form ``curve_form``; identity
    until its coefficients are set).

    Returns a ``keras.Model`` ``[condition, noise, code] -> (batch, n_frames, 1)``.
    """
    cond = keras.Input((None, n_cond), name="condition")
    noise = keras.Input((None, n_noise), name="noise")
    code = keras.Input((None, code_dim), name="code")
    spikes = ChannelSlice(0, 1, name="gen_spikes")(cond)
    level = ChannelSlice(1, n_cond, name="gen_noise_level")(cond)
    slow = ChannelSlice(0, 1, name="gen_slow_source")(noise)
    slow = layers.AveragePooling1D(slow_frames, strides=1, padding="same", name="gen_slow")(slow)
    slow = layers.Rescaling(math.sqrt(slow_frames), name="gen_slow_scale")(slow)
    x = layers.Concatenate(name="gen_inputs")([cond, noise, slow, code])
    h = layers.Conv1D(filters, 1, dtype=_policy(dtype), name="gen_embed")(x)
    for i in range(n_dilated):
        step = _causal_dilated(h, filters, kernel_size, i, dtype)
        h = layers.Add(dtype=_policy(dtype), name=f"gen_residual{i}")([h, step])
    out = layers.Conv1D(1, 1, kernel_initializer="zeros", dtype="float32", name="gen_out")(h)
    response = layers.Conv1D(
        max(n_styles, 1) * n_kernels,
        response_length,
        padding="causal",
        use_bias=False,
        dtype="float32",
        name="gen_response",
    )(spikes)
    if n_styles or n_kernels > 1:
        style = []
        if n_styles:
            style = [ChannelSlice(n_cond - n_styles, n_cond, name="gen_style")(cond)]
        if n_kernels > 1:
            pick = ChannelSlice(0, 1, name="gen_kernel_code")(code)
            style = KernelPick(n_kernels, name="gen_kernel_pick")([pick, *style])
        else:
            style = style[0]
        response = layers.Multiply(dtype="float32", name="gen_response_style")([response, style])
        response = layers.Conv1D(
            1,
            1,
            use_bias=False,
            kernel_initializer="ones",
            trainable=False,
            dtype="float32",
            name="gen_response_select",
        )(response)
    gain = layers.Dense(1, kernel_initializer="zeros", dtype="float32", name="gen_gain")(
        layers.Concatenate(name="gen_gain_inputs")([code, level])
    )
    gain = layers.Activation("exponential", dtype="float32", name="gen_gain_exp")(gain)
    response = layers.Multiply(dtype="float32", name="gen_scaled_response")([response, gain])
    if curve:
        inputs = [response]
        if n_styles:
            inputs.append(ChannelSlice(n_cond - n_styles, n_cond, name="gen_curve_style")(cond))
        response = ResponseCurve(
            max(n_styles, 1), form=curve_form, dtype="float32", name="gen_curve"
        )(inputs)
    skip = layers.Conv1D(1, 1, dtype="float32", name="gen_skip")(x)
    out = layers.Add(dtype="float32", name="gen_sum")([out, response, skip])
    return keras.Model([cond, noise, code], out, name="trace_generator")


def build_encoder(
    window_length, latent_dim, *, filters, kernel_size, depth, variational=False, dtype=None
):
    """Encoder: the conv trunk and a dense code (mean and log-variance if variational)."""
    inputs = keras.Input((window_length, 1), name="window")
    x = build_conv_trunk(
        inputs, filters=filters, kernel_size=kernel_size, depth=depth, dtype=dtype, prefix="enc"
    )
    mean = layers.Dense(latent_dim, dtype="float32", name="code")(x)
    if not variational:
        return keras.Model(inputs, mean, name="encoder")
    log_var = layers.Dense(latent_dim, dtype="float32", name="code_log_var")(x)
    return keras.Model(inputs, [mean, log_var], name="encoder")


def build_decoder(window_length, latent_dim, *, filters, kernel_size, depth, dtype=None):
    """Decoder: code -> upsampling stack -> ``(batch, window_length, 1)`` window."""
    z = keras.Input((latent_dim,), name="code")
    x = _upsampling_stack(
        z,
        window_length=window_length,
        filters=filters,
        kernel_size=kernel_size,
        depth=depth,
        dtype=dtype,
        prefix="dec",
    )
    out = layers.Conv1D(1, kernel_size, padding="same", dtype="float32", name="dec_out")(x)
    return keras.Model(z, out, name="decoder")


def copy_trunk_weights(source, target, prefix="trunk"):
    """Copy the ``{prefix}_conv*`` weights of ``source`` into ``target``.

    Where the first convolution of ``source`` has more input channels (the
    critic sees condition channels), only the fluorescence channel's kernel is
    copied. Returns the number of layers copied.
    """
    n = 0
    for layer in target.layers:
        if not layer.name.startswith(f"{prefix}_conv"):
            continue
        src = source.get_layer(layer.name).get_weights()
        dst = layer.get_weights()
        if src[0].shape != dst[0].shape:
            if src[0].shape[0] != dst[0].shape[0] or src[0].shape[2] != dst[0].shape[2]:
                raise ValueError(
                    f"layer {layer.name} has kernel {src[0].shape} in the source network but "
                    f"{dst[0].shape} in the target; build both with the same filters, "
                    "kernel_size and depth."
                )
            src = [src[0][:, : dst[0].shape[1], :], *src[1:]]
        layer.set_weights(src)
        n += 1
    return n


class _OptimizerPair:
    """The critic's and the generator's optimizers, seen as one by Keras's JAX
    trainer: it carries ``model.optimizer.variables`` through its jitted steps
    as state and writes them back into the variables after ``fit``."""

    built = True

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def variables(self):
        return [v for opt in self.optimizers for v in opt.variables]


class ConditionalWGAN(keras.Model):
    """(Conditional) Wasserstein GAN with gradient penalty, trained by ``fit``.

    Holds a generator and a critic and implements ``train_step``: ``n_critic``
    critic updates with the WGAN-GP loss, then one generator update. The losses
    are written once in ``keras.ops``; the updates are TensorFlow's
    (``tf.GradientTape``) or JAX's (stateless, jitted, ``jax.value_and_grad``)
    depending on the Keras backend. Batches are ``x`` (unconditional) or
    ``(x, condition)`` with ``x`` of shape ``(batch, window_length, 1)`` and the
    condition ``(batch, window_length, n_cond_channels)``. ``test_step``
    reports the critic's Wasserstein estimate ``w_dist`` on validation data.

    This object exists for training only; the estimator persists the generator
    and critic, which are plain functional models.

    Parameters
    ----------
    generator, critic : keras.Model
    latent_dim : int
    n_critic : int, default=2
    gp_weight : float, default=10.0
    seed : int or None, default=None
    """

    def __init__(
        self, generator, critic, latent_dim, n_critic=2, gp_weight=10.0, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.critic = critic
        self.latent_dim = int(latent_dim)
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.w_tracker = keras.metrics.Mean(name="w_dist")
        self.built = True  # its networks are; nothing to build from data

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.gp_tracker, self.w_tracker]

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.d_optimizer.build(self.critic.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        if keras.backend.backend() == "jax":
            self.optimizer = _OptimizerPair(d_optimizer, g_optimizer)
            at = {id(v): i for i, v in enumerate(self.trainable_variables)}
            self._critic_index = [at[id(v)] for v in self.critic.trainable_variables]
            self._generator_index = [at[id(v)] for v in self.generator.trainable_variables]

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    @staticmethod
    def _unpack(data):
        if isinstance(data, (tuple, list)):
            real, cond = data[0], (data[1] if len(data) > 1 else None)
        else:
            real, cond = data, None
        return ops.cast(real, "float32"), cond

    # ------------------------------------------------- losses (any backend)
    def _generate(self, batch, cond, training):
        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        inputs = z if cond is None else [z, cond]
        return self.generator(inputs, training=training)

    def _score(self, x, cond, training):
        x = ops.cast(x, "float32")
        if cond is not None:
            x = ops.concatenate([x, ops.cast(cond, "float32")], axis=-1)
        return ops.cast(self.critic(x, training=training), "float32")

    def _gradient_penalty(self, real, fake, cond):
        eps = keras.random.uniform((ops.shape(real)[0], 1, 1), seed=self.seed_generator)
        mixed = eps * real + (1.0 - eps) * ops.cast(fake, "float32")
        grads = _input_gradient(lambda m: self._score(m, cond, training=True), mixed)
        norm = ops.sqrt(ops.sum(ops.square(grads), axis=[1, 2]) + 1e-12)
        return ops.mean(ops.square(norm - 1.0))

    def _critic_loss(self, real, cond):
        fake = self._generate(ops.shape(real)[0], cond, training=True)
        d_real = self._score(real, cond, training=True)
        d_fake = self._score(fake, cond, training=True)
        gp = self._gradient_penalty(real, fake, cond)
        w_dist = ops.mean(d_real) - ops.mean(d_fake)
        # small drift term keeps critic scores near zero (Karras et al. 2018)
        loss = -w_dist + self.gp_weight * gp + 1e-3 * ops.mean(ops.square(d_real))
        return loss, {"gp": gp, "w_dist": w_dist}

    def _generator_loss(self, real, cond):
        fake = self._generate(ops.shape(real)[0], cond, training=True)
        return -ops.mean(self._score(fake, cond, training=True)), {}

    def _validation_distance(self, real, cond):
        fake = self._generate(ops.shape(real)[0], cond, training=False)
        return ops.mean(self._score(real, cond, False)) - ops.mean(self._score(fake, cond, False))

    def _log(self, d_loss, g_loss, gp, w_dist):
        for tracker, value in zip(self.metrics, [d_loss, g_loss, gp, w_dist]):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.metrics}

    def _log_validation(self, w_dist):
        self.w_tracker.update_state(w_dist)
        return {"w_dist": self.w_tracker.result()}

    # ------------------------------------------------------------ steps
    def train_step(self, *args):
        # TensorFlow's trainer passes (data); JAX's passes (state, data) and
        # takes the new state back
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def test_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_test_step(*args)
        real, cond = self._unpack(*args)
        return self._log_validation(self._validation_distance(real, cond))

    def _tf_train_step(self, data):
        real, cond = self._unpack(data)
        for _ in range(self.n_critic):
            d_loss, d_logs = self._tf_update(
                self._critic_loss, self.d_optimizer, self.critic, real, cond
            )
        g_loss, _ = self._tf_update(
            self._generator_loss, self.g_optimizer, self.generator, real, cond
        )
        return self._log(d_loss, g_loss, d_logs["gp"], d_logs["w_dist"])

    @staticmethod
    def _tf_update(loss_fn, optimizer, network, real, cond):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, logs = loss_fn(real, cond)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, network.trainable_variables)
        optimizer.apply_gradients(zip(grads, network.trainable_variables))
        return loss, logs

    def _jax_train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metric_values = state
        n = len(self.d_optimizer.variables)
        d_values, g_values = optimizer_values[:n], optimizer_values[n:]
        real, cond = self._unpack(data)
        for _ in range(self.n_critic):
            d_loss, d_logs, trainable, non_trainable, d_values = self._jax_update(
                self._critic_loss,
                self.d_optimizer,
                d_values,
                self._critic_index,
                trainable,
                non_trainable,
                real,
                cond,
            )
        g_loss, _, trainable, non_trainable, g_values = self._jax_update(
            self._generator_loss,
            self.g_optimizer,
            g_values,
            self._generator_index,
            trainable,
            non_trainable,
            real,
            cond,
        )
        logs, metric_values = _stateless(
            self.metrics_variables,
            metric_values,
            lambda: self._log(d_loss, g_loss, d_logs["gp"], d_logs["w_dist"]),
        )
        state = (trainable, non_trainable, [*d_values, *g_values], metric_values)
        return logs, state

    def _jax_update(self, loss_fn, optimizer, opt_values, index, trainable, non_trainable, *args):
        """One optimizer step on ``trainable[index]`` (one network's weights), stateless."""
        import jax

        variables = [*self.trainable_variables, *self.non_trainable_variables]

        def scaled_loss(params, non_trainable):
            values = list(trainable)
            for i, p in zip(index, params):
                values[i] = p
            (loss, logs), new = _stateless(
                variables, [*values, *non_trainable], lambda: loss_fn(*args)
            )
            scaled, _ = _stateless(
                optimizer.variables, opt_values, lambda: optimizer.scale_loss(loss)
            )
            return scaled, (loss, logs, new[len(values) :])

        params = [trainable[i] for i in index]
        grad_fn = jax.value_and_grad(scaled_loss, has_aux=True)
        (_, (loss, logs, non_trainable)), grads = grad_fn(params, non_trainable)
        params, opt_values = optimizer.stateless_apply(opt_values, grads, params)
        trainable = list(trainable)
        for i, p in zip(index, params):
            trainable[i] = p
        return loss, logs, trainable, non_trainable, opt_values

    def _jax_test_step(self, state, data):
        trainable, non_trainable, metric_values = state
        real, cond = self._unpack(data)
        variables = [*self.trainable_variables, *self.non_trainable_variables]
        w_dist, new = _stateless(
            variables,
            [*trainable, *non_trainable],
            lambda: self._validation_distance(real, cond),
        )
        logs, metric_values = _stateless(
            self.metrics_variables, metric_values, lambda: self._log_validation(w_dist)
        )
        return logs, (trainable, new[len(trainable) :], metric_values)


def _stateless(variables, values, fn):
    """Run ``fn()`` with ``variables`` read as ``values``; return its result and
    the variables' values after it (what it assigned, e.g. a seed generator's
    state), without touching the variables themselves."""
    with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
        out = fn()
    return out, [scope.get_current_value(v) for v in variables]


def _input_gradient(fn, x):
    """Gradient of ``sum(fn(x))`` with respect to the tensor ``x``."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.grad(lambda m: ops.sum(fn(m)))(x)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        out = fn(x)
    return tape.gradient(out, x)


class TraceWGAN(ConditionalWGAN):
    """:class:`ConditionalWGAN` on crops of whole traces (``CalciumGAN(fs=...)``).

    Batches are ``(x, condition)`` crops of ``warmup + crop_length`` frames:
    ``x`` the normalised fluorescence ``(batch, frames, 1)``, ``condition``
    the spike counts and noise level ``(batch, frames, 2)``. The generator
    (:func:`build_trace_generator`) renders the whole crop from per-frame
    noise and a per-trace code; the critic sees only the last ``crop_length``
    frames of real and rendered crops, so the transients of spikes in the
    first ``warmup`` frames are already under way where it looks.

    Parameters
    ----------
    generator, critic : keras.Model
    code_dim : int
        Channels of the per-trace code.
    n_noise : int
        Channels of per-frame noise.
    warmup : int
        Frames at the start of each crop that the critic does not see.
    residual_noise : bool, default=False
        Whether the batches' condition carries one more channel, last: a
        stretch of real residual noise (``CalciumGAN(trace_noise="residual")``).
        The generator gets it as its last noise channel (instead of white
        noise); the critic never sees it.
    n_critic, gp_weight, seed
        As in :class:`ConditionalWGAN`.
    """

    def __init__(self, generator, critic, code_dim, n_noise, warmup, residual_noise=False, **kw):
        super().__init__(generator, critic, code_dim, **kw)
        self.n_noise = int(n_noise)
        self.warmup = int(warmup)
        self.residual_noise = bool(residual_noise)

    def _generate(self, batch, cond, training):
        cond = ops.cast(cond, "float32")
        frames = ops.shape(cond)[1]
        n_white = self.n_noise - int(self.residual_noise)
        noise = keras.random.normal((batch, frames, n_white), seed=self.seed_generator)
        if self.residual_noise:
            noise = ops.concatenate([noise, cond[..., -1:]], axis=-1)
            cond = cond[..., :-1]
        code = keras.random.normal((batch, 1, self.latent_dim), seed=self.seed_generator)
        code = ops.broadcast_to(code, (batch, frames, self.latent_dim))
        return self.generator([cond, noise, code], training=training)

    def _score(self, x, cond, training):
        if self.residual_noise:
            cond = cond[..., :-1]
        return super()._score(x[:, self.warmup :], cond[:, self.warmup :], training)
