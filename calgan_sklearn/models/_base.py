"""The generic trainer of the Keras estimators.

:class:`BaseKerasEstimator` owns parameter validation, input checks, seeding,
the device / distribution strategy, building the optimizer
(``_make_optimizer``, the one place optimizers are made), building and
compiling under the strategy's scope, the ``fit`` loop over a
``tf.data.Dataset`` (or any iterable Keras accepts, e.g. a
``keras.utils.PyDataset``), early stopping, ``history_`` and ``partial_fit`` /
``warm_start``. Saving, loading and pickling come from
:class:`~calgan_sklearn.models._persistence.KerasPersistenceMixin`; the window
estimators share their input scaling through
:class:`~calgan_sklearn.models._scaling.WindowScalingMixin`. A concrete
estimator supplies a few hooks:

``_build_model(self, **build_args)`` (required)
    Build and return the Keras model that ``fit`` trains. Called under the
    strategy scope once per (re)initialisation with what ``_learn_data``
    returned; set any sub-models (``generator_``, ``encoder_`` ...) as
    attributes here.
``_network_arrays(self, X, y)`` (required unless ``_make_dataset`` is overridden)
    Turn validated ``X`` / ``y`` into the arrays the network consumes:
    ``(inputs,)`` or ``(inputs, targets)``.
``_make_dataset(self, X, y, *, training, seed, **fit_params)``
    Return what ``keras.Model.fit`` iterates over (for the training part, and
    for the validation part with ``training=False``). The default slices
    ``_network_arrays`` into a shuffled, batched ``tf.data.Dataset``; override
    it to stream windows from long traces with a ``keras.utils.PyDataset``.
``_check_fit_params(self, X, y, *, reset, **fit_params)``
    Check the per-call arguments of the public ``fit`` / ``partial_fit``
    (``sample_weight``, ``classes`` ...) and return them as a dict.
``_learn_data(self, X, y, **fit_params)``
    Learn data-dependent state before the model is built (``classes_``,
    input scaling); may return a dict of keyword arguments for
    ``_build_model``. Default: nothing.
``_compile_model(self, model)``
    Compile the model; the default uses ``_make_optimizer()`` with ``_loss()``
    and ``_metrics()``.
``_check_y(self, y, X, *, reset)``
    Validate targets; default: ``y`` is ignored.

Per-call arguments travel as keyword arguments, as skorch passes
``**fit_params``: the public method calls ``self._fit(X, y, **fit_params)``,
and each hook above that takes ``**fit_params`` receives the checked ones; with
``validation_fraction > 0`` those with one entry per sample are split with the
samples. Nothing per-call is parked on the estimator.

Class attributes: ``_monitor`` (quantity early stopping watches; lower is
better),
``_min_samples`` (fewest windows ``fit`` accepts), and the persistence
mixin's ``_keras_attributes``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import numbers
import re
import textwrap
import weakref

import keras
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_method_params, validate_data

from ._persistence import KerasPersistenceMixin

__all__ = ["BaseKerasEstimator"]


#: Parameters every Keras estimator has, with their constraints.
COMMON_PARAMETER_CONSTRAINTS = {
    "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
    "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
    "patience": [Interval(numbers.Integral, 1, None, closed="left")],
    "callbacks": [list, None],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
    "warm_start": ["boolean"],
    "mixed_precision": ["boolean"],
    "jit_compile": ["boolean"],
    "distribute": ["boolean"],
}

#: numpydoc type and description of each common parameter, written once: a
#: line ``{common_parameters}`` in an estimator's docstring becomes these
#: entries, with the defaults of its ``__init__``, its ``_monitor`` for
#: ``{monitor}``, and any sentence it adds in ``_parameter_notes``.
COMMON_PARAMETER_DOCS = {
    "epochs": ("int", "Passes over the training data per ``fit``; ``partial_fit`` trains one."),
    "batch_size": ("int", "Size of the minibatch of each gradient step."),
    "learning_rate": ("float", "Learning rate of the Adam optimizer."),
    "validation_fraction": (
        "float",
        "Fraction of the samples (rows of ``X``) held out for early stopping on "
        "``{monitor}``; 0 disables it.",
    ),
    "patience": (
        "int",
        "Epochs without improvement of ``{monitor}`` before early stopping; the "
        "weights of the best epoch are restored.",
    ),
    "callbacks": (
        "list of keras.callbacks.Callback or None",
        "Extra Keras callbacks, passed to ``keras.Model.fit`` as they are.",
    ),
    "verbose": ("int", "0 silent, 1 a Keras progress bar per epoch, 2 one line per epoch."),
    "random_state": (
        "int, RandomState instance or None",
        "Seeds the weight initialisation, shuffling and random noise; an integer "
        "gives the same fitted weights and predictions on CPU.",
    ),
    "warm_start": (
        "bool",
        "If True, ``fit`` on a fitted estimator continues training its network(s) "
        "instead of starting anew.",
    ),
    "mixed_precision": (
        "bool",
        "Compute the hidden layers in reduced precision with float32 weights and "
        "outputs: ``mixed_float16`` with loss scaling on a GPU, ``mixed_bfloat16`` "
        "on a CPU.",
    ),
    "jit_compile": (
        "bool",
        "Compile the training step with XLA (TensorFlow backend; under JAX every "
        "step is compiled with XLA whatever this says).",
    ),
    "distribute": (
        "bool",
        "Build and train under ``tf.distribute.MirroredStrategy`` over all visible "
        "GPUs (one device on a CPU-only machine).",
    ),
}

_COMMON_PARAMETERS_MARK = re.compile(r"^([ \t]*)\{common_parameters\}[ \t]*$", re.MULTILINE)


def _document_common_parameters(cls):
    """Replace the ``{common_parameters}`` line of ``cls.__doc__`` by their entries."""
    doc = cls.__doc__
    match = _COMMON_PARAMETERS_MARK.search(doc or "")
    if match is None:
        return
    indent = match.group(1)
    signature = inspect.signature(cls.__init__).parameters
    names = [n for n in signature if n in COMMON_PARAMETER_DOCS] or list(COMMON_PARAMETER_DOCS)
    notes = getattr(cls, "_parameter_notes", {})
    lines = []
    for name in names:
        kind, text = COMMON_PARAMETER_DOCS[name]
        default = signature[name].default if name in signature else inspect.Parameter.empty
        if default is not inspect.Parameter.empty:
            kind = f"{kind}, default={default!r}"
        text = " ".join(
            [text.format(monitor=cls._monitor)] + ([notes[name]] if name in notes else [])
        )
        lines.append(f"{indent}{name} : {kind}")
        lines += textwrap.wrap(
            text, width=79, initial_indent=indent + "    ", subsequent_indent=indent + "    "
        )
    cls.__doc__ = doc[: match.start()] + "\n".join(lines) + doc[match.end() :]


#: Graph function of each network for inference (weakly keyed: dropped with it).
_COMPILED = weakref.WeakKeyDictionary()


class _CallInference:
    """``network(x, training=False)`` for a weakly referenced network.

    An object, not a lambda: TensorFlow counts traces per Python code object,
    so graph functions of one shared lambda, one per fitted network (a grid
    search, cross-validation folds), would add up to its warning that
    "5 out of the last 5 calls ... triggered tf.function retracing", though
    each network is traced once. An object without ``__code__`` is counted on
    its own.
    """

    def __init__(self, model):
        self.ref = weakref.ref(model)  # the cache must not keep the network alive

    def __call__(self, x):
        return self.ref()(x, training=False)


def inference_function(model):
    """``model(x, training=False)``, as a TensorFlow graph function when possible.

    Calling a Keras model eagerly runs its layers one by one from Python; the
    graph function runs the whole network as one graph (about three times
    faster on CPU for the spike-inference network). A network with one input
    gets one graph for inputs of every batch size and length (traced once);
    with several inputs, ``reduce_retracing`` lets them share one after the
    second shape. The function is made once per
    network and kept as long as the network lives.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_inference_function(model)
    if backend != "tensorflow":
        return lambda x: model(x, training=False)
    fn = _COMPILED.get(model)
    if fn is None:
        import tensorflow as tf

        call = _CallInference(model)
        inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
        if len(inputs) == 1:
            # one graph for every batch size and length: no retracing (about
            # half a second each) when a second call brings a new shape
            spec = tf.TensorSpec([None] * len(inputs[0].shape), inputs[0].dtype)
            fn = tf.function(call, input_signature=[spec], autograph=False)
        else:
            fn = tf.function(call, reduce_retracing=True, autograph=False)
        _COMPILED[model] = fn
    return fn


def _bucket(n, minimum=256):
    """``n`` rounded up to a power of two (at least ``minimum``)."""
    return max(minimum, 1 << max(int(n) - 1, 0).bit_length())


def _jax_inference_function(model):
    """``model(x, training=False)`` as one jitted JAX function, inputs padded to few shapes.

    Under JAX an un-jitted call runs op by op, and a jitted one is compiled
    again for every new input shape. The batch of ``x`` is padded up to a power
    of two, and so is its length where the network leaves the length open (the
    fully convolutional trace networks, for which zeros after a trace's end are
    what ``predict`` pads with anyway); the output is cut back. That keeps the
    compilations to a handful.
    """
    fn = _COMPILED.get(model)
    if fn is None:
        import jax

        ref = weakref.ref(model)

        @jax.jit
        def call(trainable, non_trainable, x):
            return ref().stateless_call(trainable, non_trainable, x, training=False)[0]

        inputs = model.inputs if isinstance(model.inputs, (list, tuple)) else [model.inputs]
        # only a length the network leaves open (None) may be padded
        open_length = len(inputs) == 1 and len(inputs[0].shape) == 3 and inputs[0].shape[1] is None

        def fn(x):
            m = ref()
            if isinstance(x, (list, tuple)):
                x = [np.asarray(a) for a in x]
                n = len(x[0])
                padded = [
                    np.concatenate([a, np.zeros((_bucket(n, 1) - n, *a.shape[1:]), a.dtype)])
                    for a in x
                ]
                frames = None
            else:
                x = np.asarray(x)
                n = len(x)
                frames = x.shape[1] if open_length else None
                shape = (
                    _bucket(n, 1),
                    _bucket(frames) if open_length else x.shape[1],
                    *x.shape[2:],
                )
                padded = np.zeros(shape, x.dtype)
                padded[:n, : x.shape[1]] = x
            out = call(
                [v.value for v in m.trainable_variables],
                [v.value for v in m.non_trainable_variables],
                padded,
            )
            cut = (slice(0, n),) if frames is None else (slice(0, n), slice(0, frames))
            if isinstance(out, (list, tuple)):
                return [np.asarray(o)[cut] for o in out]
            return np.asarray(out)[cut]

        _COMPILED[model] = fn
    return fn


@functools.lru_cache(maxsize=1)
def native_bfloat16():
    """Whether this CPU has bfloat16 arithmetic in hardware (AVX512-BF16 or AMX).

    Read from ``/proc/cpuinfo`` (Linux); False elsewhere, where bfloat16 would
    be emulated and slower than float32.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def gpu_available():
    """Whether the Keras backend (TensorFlow, JAX or PyTorch) sees at least one GPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend != "tensorflow":
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def require_backend(what, backends=("tensorflow",)):
    """Raise a clear error when ``what`` needs one of ``backends`` and Keras runs another."""
    backend = keras.backend.backend()
    if backend not in backends:
        names = " or ".join(repr(b) for b in backends)
        raise RuntimeError(
            f"{what} needs Keras's {names} backend, but Keras runs on {backend!r}; install "
            f"{backends[0]} and set KERAS_BACKEND={backends[0]} (before keras is imported)."
        )


class _SingleDevice:
    """Stand-in for TensorFlow's default strategy under the other Keras backends."""

    @staticmethod
    def scope():
        return contextlib.nullcontext()


class _ArrayBatches(keras.utils.PyDataset):
    """Batches of arrays, reshuffled every epoch from ``seed`` when ``shuffle``.

    What the default ``_make_dataset`` feeds to ``fit`` under the Keras
    backends other than TensorFlow (which gets a ``tf.data.Dataset``): the same
    batches in a different order, as NumPy's permutations are not TensorFlow's.
    """

    def __init__(self, arrays, batch_size, *, shuffle, seed):
        super().__init__()
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self._rng = np.random.default_rng(seed) if shuffle else None
        self._order = np.arange(len(arrays[0]))
        self.on_epoch_end()

    def __len__(self):
        return -(-len(self._order) // self.batch_size)

    def __getitem__(self, idx):
        rows = self._order[idx * self.batch_size : (idx + 1) * self.batch_size]
        batch = tuple(a[rows] for a in self.arrays)
        return batch[0] if len(batch) == 1 else batch

    def on_epoch_end(self):
        if self._rng is not None:
            self._order = self._rng.permutation(len(self._order))


class BaseKerasEstimator(KerasPersistenceMixin, BaseEstimator):
    """Base class of the Keras estimators on windows of calcium traces.

    Not meant to be used directly: a subclass lists its parameters in
    ``__init__`` (which only stores them), extends ``_parameter_constraints``
    with :data:`COMMON_PARAMETER_CONSTRAINTS`, documents them with a line
    ``{common_parameters}`` in its Parameters section (filled from
    :data:`COMMON_PARAMETER_DOCS` with its defaults), and implements the hooks
    listed in the module docstring. The parameters below are the common ones.

    Parameters
    ----------
    {common_parameters}

    Attributes
    ----------
    model_ : keras.Model
        The trained Keras model.
    history_ : dict of str to list of float
        Per-epoch losses and metrics of every ``fit``/``partial_fit`` call
        appended together (``"loss"``, ``"val_loss"`` ...).
    n_iter_ : int
        Number of epochs trained so far.
    n_features_in_ : int
        Window length seen in ``fit``.
    """

    _monitor = "val_loss"
    _min_samples = 2
    #: Keras backends this estimator trains on (its train step's), or None for any.
    _training_backends = None
    #: Sentences an estimator adds to the description of a common parameter.
    _parameter_notes: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _document_common_parameters(cls)

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        # CPU kernels are reproducible for a fixed random_state; GPU kernels are not
        tags.non_deterministic = gpu_available()
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_iter_")

    # ------------------------------------------------------------- training
    def _fit(self, X, y=None, *, partial=False, **fit_params):
        """Validate, (re)build if needed, and train; shared by ``fit``/``partial_fit``.

        ``fit_params`` are the per-call arguments of the public method
        (``sample_weight``, ``classes`` ...). They are checked by
        ``_check_fit_params`` and handed to ``_learn_data``,
        ``_split_validation`` and ``_make_dataset`` as keyword arguments; they
        are never stored on the estimator.
        """
        self._validate_params()
        self._check_backend()
        reset = not (self.__sklearn_is_fitted__() and (partial or self.warm_start))
        X, y = self._check_data(X, y, reset=reset)
        fit_params = self._check_fit_params(X, y, reset=reset, **fit_params)
        self._check_params(X)
        seed = self._seed_for_fit(reset)
        if reset:
            build_args = self._learn_data(X, y, **fit_params) or {}
            self._build_and_compile(**build_args)
            self.history_ = {}
            self.n_iter_ = 0
        train, val = self._split_validation(X, y, seed, use=not partial, **fit_params)
        self._run_fit(train, val, epochs=1 if partial else self.epochs, seed=seed, partial=partial)
        self._finish_fit(train, seed=seed, partial=partial)
        return self

    def _check_backend(self):
        """Raise, before any work, if training needs a Keras backend other than the one running."""
        name = type(self).__name__
        if self._training_backends:
            require_backend(f"Training {name}", self._training_backends)
        if self.distribute:
            require_backend(f"{name}(distribute=True) (tf.distribute.MirroredStrategy)")

    def _finish_fit(self, train, *, seed, partial):
        """Hook run after training on ``train`` (an ``(X, y, fit_params)`` triple); no-op."""

    def _seed_for_fit(self, reset):
        """Turn ``random_state`` into an int seed and seed Python, NumPy and TensorFlow."""
        import keras

        if reset:
            rs = self.random_state
            if isinstance(rs, numbers.Integral):
                self._seed = int(rs) % (2**31 - 1)
            else:
                self._seed = int(check_random_state(rs).randint(2**31 - 1))
        # continued training (partial_fit, warm start) reshuffles differently each call
        offset = 0 if reset else self.n_iter_
        seed = (self._seed + offset) % (2**31 - 1)
        keras.utils.set_random_seed(seed)
        return seed

    def _get_strategy(self):
        """``MirroredStrategy`` when ``distribute``, else TensorFlow's default strategy.

        Under the other Keras backends: one device, and ``distribute=True``
        raises (it needs ``tf.distribute``).
        """
        if keras.backend.backend() != "tensorflow":
            self._check_backend()
            return _SingleDevice()
        import tensorflow as tf

        if self.distribute:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()

    def _dtype_policy(self):
        """Keras dtype policy name for the layers, or None for float32."""
        if not self.mixed_precision:
            return None
        return "mixed_float16" if gpu_available() else "mixed_bfloat16"

    def _make_optimizer(self, learning_rate=None, **kwargs):
        """Adam at ``learning_rate`` (a float or a schedule; default the parameter),
        loss-scaled under ``mixed_float16``."""
        import keras

        if learning_rate is None:
            learning_rate = self.learning_rate
        opt = keras.optimizers.Adam(learning_rate=learning_rate, **kwargs)
        if self._dtype_policy() == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    def _build_and_compile(self, **build_args):
        """``_build_model(**build_args)`` and ``_compile_model`` under the strategy scope."""
        with self._get_strategy().scope():
            model = self._build_model(**build_args)
            self._compile_model(model)
        self.model_ = model

    def _compile_model(self, model):
        model.compile(
            optimizer=self._make_optimizer(),
            loss=self._loss(),
            metrics=self._metrics(),
            jit_compile=self._jit_compile(),
        )

    def _jit_compile(self):
        """``jit_compile`` for ``Model.compile``: the parameter under TensorFlow;
        always on under JAX, where a step that is not jitted runs op by op (about
        six times slower than TensorFlow on the CPU, measured)."""
        return True if keras.backend.backend() == "jax" else self.jit_compile

    def _loss(self):
        raise NotImplementedError

    def _metrics(self):
        return None

    def _split_validation(self, X, y, seed, *, use=True, **fit_params):
        """Hold out ``validation_fraction`` of the samples (stratified where possible).

        Returns ``(train, val)``, each a triple ``(X, y, fit_params)``; ``val`` is
        None without a split. Fit parameters with one entry per sample (per-trace
        weights ...) are split with the samples, as scikit-learn's
        cross-validation splits them; the others go to both parts unchanged.
        """
        if not use or self.validation_fraction == 0:
            return (X, y, fit_params), None
        n_val = int(np.ceil(self.validation_fraction * len(X)))
        if n_val < 1 or len(X) - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves no windows for "
                f"training or validation out of {len(X)}; use more windows or "
                "validation_fraction=0."
            )
        strat = self._stratify_labels(y)
        if strat is not None and np.unique(strat, return_counts=True)[1].min() < 2:
            strat = None
        # the indices depend only on the number of samples, the seed and strat
        parts = train_test_split(
            np.arange(len(X)), test_size=n_val, random_state=seed, stratify=strat
        )
        return tuple(
            (
                X[idx],
                None if y is None else y[idx],
                _check_method_params(X, fit_params, indices=idx),
            )
            for idx in parts
        )

    def _stratify_labels(self, y):
        return None

    def _make_callbacks(self, train, val, *, partial=False):
        """The user's callbacks, and early stopping on ``_monitor`` when there is a
        validation part ``val``. ``train`` and ``val`` are ``(X, y, fit_params)``
        triples (``val`` None without a split); ``partial``: a ``partial_fit``."""
        import keras

        callbacks = list(self.callbacks or [])
        if val is not None:
            callbacks.append(
                # every monitored quantity is lower-is-better (val_loss, the GAN's
                # Wasserstein estimate val_w_dist); Keras cannot guess the latter
                keras.callbacks.EarlyStopping(
                    monitor=self._monitor,
                    mode="min",
                    patience=self.patience,
                    restore_best_weights=True,
                )
            )
        return callbacks

    def _run_fit(self, train, val, *, epochs, seed, partial=False):
        """One ``keras.Model.fit`` call on ``(X, y, fit_params)`` triples; extends ``history_``."""
        X, y, fit_params = train
        dataset = self._make_dataset(X, y, training=True, seed=seed, **fit_params)
        val_data = None
        if val is not None:
            X, y, fit_params = val
            val_data = self._make_dataset(X, y, training=False, seed=seed, **fit_params)
        result = self.model_.fit(
            dataset,
            validation_data=val_data,
            epochs=epochs,
            shuffle=False,  # the dataset shuffles itself, with a seed
            verbose=self.verbose,
            callbacks=self._make_callbacks(train, val, partial=partial),
        )
        for key, values in result.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in values)
        self.n_iter_ += len(result.epoch)

    def _make_dataset(self, X, y, *, training, seed=None, **fit_params):
        """Shuffled (when training), batched ``tf.data.Dataset`` of ``_network_arrays``.

        ``fit_params`` (the checked per-call arguments of ``fit``) are not used
        by this default; a subclass's dataset may use them. Under the other
        Keras backends, a ``keras.utils.PyDataset`` of the same batches.
        """
        arrays = self._network_arrays(X, y)
        if keras.backend.backend() != "tensorflow":
            return _ArrayBatches(arrays, self.batch_size, shuffle=training, seed=seed)
        import tensorflow as tf

        data = arrays[0] if len(arrays) == 1 else tuple(arrays)
        ds = tf.data.Dataset.from_tensor_slices(data)
        if training:
            ds = ds.shuffle(len(X), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)

    def _network_arrays(self, X, y):
        raise NotImplementedError

    # ------------------------------------------------------------ data checks
    def _check_data(self, X, y=None, *, reset):
        """The one input check: windows, then targets (hook ``_check_y``)."""
        X = self._check_windows(X, reset=reset, min_samples=self._min_samples if reset else 1)
        return X, self._check_y(y, X, reset=reset)

    def _check_windows(self, X, *, reset, min_samples=1):
        """Validate ``(n_windows, window_length)`` windows; NaN/inf raise a clear error."""
        name = type(self).__name__
        if X is None:
            raise ValueError(
                f"{name} needs windows X of shape (n_windows, window_length), got None."
            )
        if not hasattr(X, "tocsr"):  # sparse input is left to validate_data's message
            ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
            if ndim == 3 and np.shape(X)[-1] == 1:
                X = np.asarray(X)[..., 0]
            elif ndim != 2:
                raise ValueError(
                    f"{name} expects windows of shape (n_windows, window_length); got an "
                    f"array with {ndim} dimension(s) and shape {np.shape(X)}. Cut traces "
                    "into windows with calgan_sklearn.datasets.make_windows. Reshape your "
                    "data with X.reshape(1, -1) if it is a single window."
                )
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            ensure_min_samples=min_samples,
        )
        bad = ~np.isfinite(X)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            kind = "NaN" if np.isnan(X).any() else "inf"
            raise ValueError(
                f"X contains {kind} (non-finite values) in {len(rows)} window(s), first "
                f"{rows[:10].tolist()}; windows must be finite. Drop windows that overlap "
                "a trace's NaN padding (make_windows does this) or interpolate over gaps."
            )
        return X

    def _check_y(self, y, X, *, reset):
        return None

    def _check_fit_params(self, X, y, *, reset, **fit_params):
        """Check the per-call arguments of ``fit`` against validated ``X`` / ``y``.

        Hook: return them, checked, as a dict; it is what ``_learn_data``,
        ``_split_validation`` and ``_make_dataset`` receive. Default: as given.
        """
        return fit_params

    def _check_params(self, X):
        """Cross-parameter checks that need the data (hook; default none)."""

    # ------------------------------------------------------------- data state
    def _learn_data(self, X, y, **fit_params):
        """Learn data-dependent state before the model is built (hook; default none).

        May return a dict of keyword arguments for ``_build_model``: per-fit
        objects that are not fitted state (e.g. a critic to start from).
        """
        return None

    # ------------------------------------------------------------- prediction
    def _predict_network(self, model, inputs, batch_size=4096):
        """Call ``model`` in inference mode on batches; returns NumPy array(s)."""
        n = len(inputs[0]) if isinstance(inputs, (list, tuple)) else len(inputs)
        outs = []
        for start in range(0, n, batch_size):
            sl = slice(start, start + batch_size)
            batch = [a[sl] for a in inputs] if isinstance(inputs, (list, tuple)) else inputs[sl]
            out = inference_function(model)(batch)
            if isinstance(out, (list, tuple)):
                outs.append([np.asarray(o, dtype=np.float32) for o in out])
            else:
                outs.append(np.asarray(out, dtype=np.float32))
        if outs and isinstance(outs[0], list):
            return [np.concatenate(parts) for parts in zip(*outs)]
        return np.concatenate(outs)


_document_common_parameters(BaseKerasEstimator)
