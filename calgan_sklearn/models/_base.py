"""Everything generic about the Keras estimators.

:class:`BaseKerasEstimator` owns parameter validation, input checks, seeding,
the device / distribution strategy, building and compiling under the strategy's
scope, the ``fit`` loop over a ``tf.data.Dataset`` (or any iterable Keras
accepts, e.g. a ``keras.utils.PyDataset``), early stopping, ``history_``,
``partial_fit`` / ``warm_start``, pickling and ``save`` / ``load``. A concrete
estimator supplies a few hooks:

``_build_model(self)`` (required)
    Build and return the Keras model that ``fit`` trains. Called under the
    strategy scope once per (re)initialisation, after ``_learn_data``; set any
    sub-models (``generator_``, ``encoder_`` ...) as attributes here.
``_network_arrays(self, X, y)`` (required unless ``_make_dataset`` is overridden)
    Turn validated ``X`` / ``y`` into the arrays the network consumes:
    ``(inputs,)`` or ``(inputs, targets)``.
``_make_dataset(self, X, y, *, training, seed)``
    Return what ``keras.Model.fit`` iterates over. The default slices
    ``_network_arrays`` into a shuffled, batched ``tf.data.Dataset``; override
    it to stream windows from long traces with a ``keras.utils.PyDataset``.
``_learn_data(self, X, y)``
    Learn data-dependent state before the model is built (``classes_``,
    input scaling). Default: window scaling per ``self.normalize`` if present.
``_compile_model(self, model)``
    Compile the model; the default uses Adam(``learning_rate``) with
    ``_loss()`` and ``_metrics()``.
``_check_y(self, y, X, *, reset)``
    Validate targets; default: ``y`` is ignored.
``_assemble_model(self)``
    Rebuild ``model_`` from persisted parts after unpickling / loading, when
    ``model_`` itself is not in ``_keras_attributes`` (e.g. the GAN wrapper).

Class attributes: ``_keras_attributes`` (names of the fitted Keras models that
are persisted), ``_monitor`` (quantity early stopping watches),
``_min_samples`` (fewest windows ``fit`` accepts).
"""

from __future__ import annotations

import io
import json
import numbers
import os
import tempfile
import warnings
import weakref
import zipfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..signal import noise_sd

__all__ = ["BaseKerasEstimator", "load", "load_metadata"]

_FORMAT_VERSION = 1
_ESTIMATOR_FILE = "estimator.json"
#: Top-level keys of ``estimator.json``; ``metadata`` is optional.
_JSON_KEYS = ("format_version", "class", "params", "state", "metadata")

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

#: Constraint of the ``normalize`` parameter shared by the window estimators
#: (the values mean what :mod:`calgan_sklearn.signal` says).
NORMALIZE_CONSTRAINT = [StrOptions({"noise", "global"}), None]

#: Names changed since estimators could be saved (old -> new): parameters, fitted
#: attributes and their ``.keras`` files. ``load`` and unpickling read the old ones.
_RENAMED = {
    "normalization": "normalize",
    "discriminator_": "critic_",
    "offset_": "input_offset_",
    "scale_": "input_scale_",
}
#: Parameter values changed since (parameter -> {old: new}).
_RENAMED_VALUES = {"normalize": {"window": "noise"}}

#: Estimator classes ``load`` may instantiate (filled by ``__init_subclass__``);
#: ``load`` never imports a class named in a file.
_REGISTRY: dict[str, type] = {}


#: Graph function of each network for inference (weakly keyed: dropped with it).
_COMPILED = weakref.WeakKeyDictionary()


def inference_function(model):
    """``model(x, training=False)``, as a TensorFlow graph function when possible.

    Calling a Keras model eagerly runs its layers one by one from Python; the
    graph function runs the whole network as one graph (about three times
    faster on CPU for the spike-inference network). ``reduce_retracing`` lets
    inputs of every length share one graph. The function is made once per
    network and kept as long as the network lives.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return lambda x: model(x, training=False)
    fn = _COMPILED.get(model)
    if fn is None:
        import tensorflow as tf

        ref = weakref.ref(model)  # the cache must not keep the network alive
        fn = tf.function(lambda x: ref()(x, training=False), reduce_retracing=True)
        _COMPILED[model] = fn
    return fn


def gpu_available():
    """Whether TensorFlow sees at least one GPU."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


class BaseKerasEstimator(BaseEstimator):
    """Base class of the Keras estimators on windows of calcium traces.

    Not meant to be used directly: a subclass lists its parameters in
    ``__init__`` (which only stores them), extends ``_parameter_constraints``
    with :data:`COMMON_PARAMETER_CONSTRAINTS`, and implements the hooks listed in
    the module docstring. The parameters documented below are the common ones.

    Parameters
    ----------
    epochs : int
        Passes over the training windows per ``fit`` (``partial_fit`` does one).
    batch_size : int
        Windows per gradient step.
    learning_rate : float
        Adam learning rate.
    validation_fraction : float
        Fraction of windows held out for early stopping; 0 disables it.
    patience : int
        Epochs without improvement of the monitored validation quantity before
        early stopping (the best weights are restored).
    callbacks : list of keras.callbacks.Callback or None
        Extra Keras callbacks, passed to ``keras.Model.fit`` as they are.
    verbose : int
        0 silent, 1 Keras progress bar, 2 one line per epoch.
    random_state : int, RandomState instance or None
        Seeds weights, shuffling and noise. The same integer gives the same
        fitted weights and predictions on CPU.
    warm_start : bool
        If True, ``fit`` on a fitted estimator continues training the existing
        network (the data must have the same window length and classes).
    mixed_precision : bool
        Compute in ``mixed_float16`` on GPU (``mixed_bfloat16`` on CPU) with
        float32 weights and outputs.
    jit_compile : bool
        Compile the training step with XLA.
    distribute : bool
        Build and train under ``tf.distribute.MirroredStrategy`` over all
        visible GPUs (a single-device strategy on a CPU-only machine).

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

    _keras_attributes: tuple[str, ...] = ("model_",)
    _monitor = "val_loss"
    _min_samples = 2

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls
        _REGISTRY[cls.__qualname__] = cls

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
    def _fit(self, X, y=None, *, partial=False):
        """Validate, (re)build if needed, and train; shared by ``fit``/``partial_fit``."""
        self._validate_params()
        reset = not (self.__sklearn_is_fitted__() and (partial or self.warm_start))
        X, y = self._check_data(X, y, reset=reset)
        self._check_params(X)
        seed = self._seed_for_fit(reset)
        if reset:
            self._learn_data(X, y)
            self._build_and_compile()
            self.history_ = {}
            self.n_iter_ = 0
        train, val = self._split_validation(X, y, seed, use=not partial)
        self._run_fit(train, val, epochs=1 if partial else self.epochs, seed=seed)
        return self

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
        """``MirroredStrategy`` when ``distribute``, else TensorFlow's default strategy."""
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

    def _build_and_compile(self):
        with self._get_strategy().scope():
            model = self._build_model()
            self._compile_model(model)
        self.model_ = model

    def _compile_model(self, model):
        model.compile(
            optimizer=self._make_optimizer(),
            loss=self._loss(),
            metrics=self._metrics(),
            jit_compile=self.jit_compile,
        )

    def _loss(self):
        raise NotImplementedError

    def _metrics(self):
        return None

    def _split_validation(self, X, y, seed, *, use=True):
        """Hold out ``validation_fraction`` of the windows (stratified where possible)."""
        if not use or self.validation_fraction == 0:
            return (X, y), None
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
        arrays = (X,) if y is None else (X, y)
        parts = train_test_split(*arrays, test_size=n_val, random_state=seed, stratify=strat)
        if y is None:
            return (parts[0], None), (parts[1], None)
        return (parts[0], parts[2]), (parts[1], parts[3])

    def _stratify_labels(self, y):
        return None

    def _make_callbacks(self, has_validation):
        import keras

        callbacks = list(self.callbacks or [])
        if has_validation:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=self._monitor, patience=self.patience, restore_best_weights=True
                )
            )
        return callbacks

    def _run_fit(self, train, val, *, epochs, seed):
        """One ``keras.Model.fit`` call; appends its history to ``history_``."""
        dataset = self._make_dataset(*train, training=True, seed=seed)
        val_data = None if val is None else self._make_dataset(*val, training=False, seed=seed)
        result = self.model_.fit(
            dataset,
            validation_data=val_data,
            epochs=epochs,
            shuffle=False,  # the dataset shuffles itself, with a seed
            verbose=self.verbose,
            callbacks=self._make_callbacks(val is not None),
        )
        for key, values in result.history.items():
            self.history_.setdefault(key, []).extend(float(v) for v in values)
        self.n_iter_ += len(result.epoch)

    def _make_dataset(self, X, y, *, training, seed=None):
        """Shuffled (when training), batched ``tf.data.Dataset`` of ``_network_arrays``."""
        import tensorflow as tf

        arrays = self._network_arrays(X, y)
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

    def _check_params(self, X):
        """Cross-parameter checks that need the data (hook; default none)."""

    # ------------------------------------------------------------- data state
    def _learn_data(self, X, y):
        self._fit_scaling(X)

    def _fit_scaling(self, X):
        """Learn the input scaling selected by ``self.normalize``.

        ``"noise"``: subtract each window's 20th percentile (its baseline) and
        divide by its noise sigma (:func:`calgan_sklearn.signal.noise_sd`, steps
        not centred), then
        by one global factor so the training windows have unit variance; the
        pairs (baseline, noise) of up to 4096 training windows are kept in
        ``window_loc_`` / ``window_scale_`` to bring generated windows back to
        data units. ``"global"``: subtract the global mean, divide by the
        global std. ``input_offset_`` and ``input_scale_`` hold the global parts.
        """
        mode = getattr(self, "normalize", None)
        self.input_offset_, self.input_scale_ = 0.0, 1.0
        if mode == "global":
            self.input_offset_ = float(X.mean())
            self.input_scale_ = float(X.std()) if X.std() > 1e-12 else 1.0
        elif mode == "noise":
            loc, noise = self._window_stats(X)
            z = (X - loc[:, None]) / noise[:, None]
            self.input_scale_ = float(z.std()) if z.std() > 1e-12 else 1.0
            keep = check_random_state(self._seed).permutation(len(X))[:4096]
            self.window_loc_, self.window_scale_ = loc[keep], noise[keep]

    @staticmethod
    def _window_stats(X):
        return np.percentile(X, 20, axis=1), noise_sd(X, axis=1, center=False)

    def _scale(self, X):
        """Windows in data units -> normalised float32 ``(n, L)`` plus per-window loc/scale."""
        if getattr(self, "normalize", None) == "noise":
            loc, noise = self._window_stats(X)
        else:
            loc, noise = np.full(len(X), self.input_offset_), np.ones(len(X))
        scale = noise * self.input_scale_
        Z = (X - loc[:, None]) / scale[:, None]
        return Z.astype(np.float32), loc, scale

    def _unscale(self, Z, loc, scale):
        return np.asarray(Z, dtype=np.float64) * scale[:, None] + loc[:, None]

    def _draw_loc_scale(self, n, rng):
        """(loc, scale) pairs for generated windows: drawn from the training windows."""
        if getattr(self, "normalize", None) == "noise":
            idx = rng.randint(len(self.window_loc_), size=n)
            return self.window_loc_[idx], self.window_scale_[idx] * self.input_scale_
        return np.full(n, self.input_offset_), np.full(n, self.input_scale_)

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

    # ------------------------------------------------------------ persistence
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        for name in self._keras_attributes:
            if name in state:
                state[name] = _SerializedModel(state[name])
        if "model_" in state and "model_" not in self._keras_attributes:
            del state["model_"]
        return state

    def __setstate__(self, state):
        state = _upgrade_names(state)
        state = {k: v.load() if isinstance(v, _SerializedModel) else v for k, v in state.items()}
        super().__setstate__(state)
        if self.__sklearn_is_fitted__() and "model_" not in self.__dict__:
            self._restore_model()

    def _restore_model(self):
        """Re-create ``model_`` from persisted parts (hook ``_assemble_model``)."""
        model = self._assemble_model()
        if model is not getattr(self, "model_", None):
            self._compile_model(model)
        self.model_ = model

    def _assemble_model(self):
        return getattr(self, self._keras_attributes[0])

    def save(self, path, metadata=None):
        """Save the fitted estimator to a directory: ``.keras`` models and JSON.

        Writes ``estimator.json`` (class name, parameters, fitted NumPy/JSON
        state and any ``metadata``) and one ``<attribute>.keras`` file per
        fitted network. Parameters that are not JSON-serialisable
        (``callbacks``, an ``init`` estimator) are stored as ``None`` with a
        warning; the fitted weights are kept.

        Parameters
        ----------
        path : str or path-like
            Directory to create (or overwrite files in).
        metadata : dict, default=None
            What to keep with the model about how it was made (training data,
            time, command, versions): a dict with str keys and JSON values
            (str, numbers, bool, None, lists, dicts), checked before anything
            is written. Read it back with :func:`load_metadata`.

        Returns
        -------
        path : pathlib.Path
        """
        check_is_fitted(self)
        metadata = _check_metadata(metadata)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": _FORMAT_VERSION,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": self._json_params(),
            "state": self._json_state(),
        }
        if metadata is not None:
            meta["metadata"] = metadata
        (path / _ESTIMATOR_FILE).write_text(json.dumps(meta, indent=1))
        for name in self._keras_attributes:
            getattr(self, name).save(path / f"{name}.keras")
        return path

    @classmethod
    def load(cls, path):
        """Load an estimator written by :meth:`save`, without unpickling code.

        Only estimator classes of this package can be instantiated and Keras
        models are read with ``safe_mode=True``.

        Parameters
        ----------
        path : str or path-like
            Directory written by :meth:`save`.

        Returns
        -------
        estimator : BaseKerasEstimator
        """
        path = Path(path)
        klass, params, state, _ = _read_estimator_json(path, cls)
        est = klass(**params)
        try:
            est._validate_params()
        except ValueError as exc:
            raise ValueError(
                f"{path / _ESTIMATOR_FILE} holds an invalid parameter: {exc}"
            ) from None
        models = {
            name: _load_keras_file(_keras_file(path, name)) for name in klass._keras_attributes
        }
        for key, value in state.items():
            setattr(est, key, value)
        for name, model in models.items():
            setattr(est, name, model)
        try:
            est._restore_model()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(
                f"{path} does not hold a consistent {klass.__name__}: rebuilding it failed "
                f"with {type(exc).__name__}: {exc}. Save the estimator again."
            ) from None
        return est

    def _json_params(self):
        params = {}
        for key, value in self.get_params(deep=False).items():
            try:
                json.dumps(value)
            except TypeError:
                if value is not None:
                    warnings.warn(
                        f"parameter {key}={type(value).__name__} is not JSON-serialisable "
                        "and is saved as None; the fitted weights are saved in full.",
                        UserWarning,
                        stacklevel=3,
                    )
                value = None
            params[key] = value
        return params

    def _json_state(self):
        skip = set(self._keras_attributes) | {"model_"}
        return {
            k: _to_json(k, v)
            for k, v in vars(self).items()
            if k.endswith("_") and k not in skip and not k.startswith("__")
        } | {"_seed": self._seed}


def load(path):
    """Load any estimator of this package saved with ``estimator.save(path)``."""
    return BaseKerasEstimator.load(path)


def load_metadata(path):
    """The metadata saved with an estimator by ``estimator.save(path, metadata=...)``.

    ``estimator.json`` is checked as :func:`load` checks it; the networks are
    not read.

    Parameters
    ----------
    path : str or path-like
        Directory written by :meth:`BaseKerasEstimator.save`.

    Returns
    -------
    metadata : dict
        As given to ``save``; empty if none was given.

    Examples
    --------
    >>> import tempfile
    >>> from calgan_sklearn.models import load_metadata
    >>> from calgan_sklearn.pretrained import load_pretrained
    >>> folder = load_pretrained().save(tempfile.mkdtemp(), metadata={"note": "a copy"})
    >>> load_metadata(folder)
    {'note': 'a copy'}
    """
    return _read_estimator_json(Path(path), BaseKerasEstimator)[3]


def _check_metadata(metadata):
    """``metadata`` for :meth:`~BaseKerasEstimator.save`: None or a JSON object."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}.")
    bad = [key for key in metadata if not isinstance(key, str)]
    if bad:
        raise ValueError(f"metadata keys must be str, got {bad[:5]}; use str(key).")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"metadata must hold only JSON values (str, numbers, bool, None, lists and "
            f"dicts): {exc}. Convert NumPy values with .item() or .tolist()."
        ) from None
    return metadata


def _read_estimator_json(path, base):
    """Class, parameters, fitted state and metadata of ``estimator.json``, all checked first.

    Nothing is instantiated or set before the file's version, keys, class,
    parameter names and state names are known to be what :meth:`save` writes;
    each problem is one ``ValueError`` naming the file and what to do.
    """
    file = path / _ESTIMATOR_FILE
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file, not a folder"
        raise FileNotFoundError(
            f"{path} {what}; pass the directory written by estimator.save(path)."
        )
    if not file.is_file():
        raise FileNotFoundError(
            f"{path} is not a saved estimator: {_ESTIMATOR_FILE} is missing. "
            "Pass the directory written by estimator.save(path)."
        )
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{file} is not valid JSON ({exc}); the file is damaged or was cut off. "
            "Save the estimator again."
        ) from None
    if not isinstance(meta, dict):
        raise ValueError(f"{file} must hold a JSON object, got {type(meta).__name__}.")
    version = meta.get("format_version")
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"{file} has format_version={version!r}; this version of calgan_sklearn reads "
            f"format_version={_FORMAT_VERSION}. Save the estimator again with this version."
        )
    missing = [k for k in ("class", "params", "state") if k not in meta]
    if missing:
        raise ValueError(f"{file} lacks the key(s) {missing}; the file is incomplete.")
    unknown = sorted(set(meta) - set(_JSON_KEYS))
    if unknown:
        raise ValueError(
            f"{file} holds unknown key(s) {unknown}; it was edited or written by another "
            "version. Information about a model belongs in its metadata: "
            "estimator.save(path, metadata={...})."
        )
    klass = _REGISTRY.get(meta["class"]) if isinstance(meta["class"], str) else None
    if klass is None or not issubclass(klass, base):
        raise ValueError(
            f"{path} holds a {meta['class']!r}, which is not a {base.__name__} of "
            f"this package; known classes: {sorted(k for k in _REGISTRY if '.' in k)}."
        )
    params, state, metadata = meta["params"], meta["state"], meta.get("metadata", {})
    for key, value in (("params", params), ("state", state), ("metadata", metadata)):
        if not isinstance(value, dict):
            raise ValueError(f"{file}: {key!r} must be a JSON object, got {type(value).__name__}.")
    params, state = _upgrade_names(params), _upgrade_names(state)
    # parameters added after a model was saved take their defaults (which keep the
    # old behaviour); a name the class does not know means an edited or newer file
    unknown = sorted(set(params) - set(klass._get_param_names()))
    if unknown:
        raise ValueError(
            f"{file} names parameter(s) {unknown} that {klass.__name__} does not have "
            f"(it has {sorted(klass._get_param_names())}); it was edited or written by "
            "another version. Save the estimator again."
        )
    bad = sorted(
        k
        for k in state
        if not (k == "_seed" or (k.isidentifier() and k.endswith("_") and not k.startswith("_")))
    )
    if bad or "_seed" not in state or "n_iter_" not in state:
        raise ValueError(
            f"{file}: the fitted state has unexpected entries {bad[:5]} or lacks "
            "'_seed' / 'n_iter_'; it was not written by estimator.save. Save it again."
        )
    try:
        state = {k: _from_json(v) for k, v in state.items()}
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{file}: a fitted array cannot be read ({exc}).") from None
    return klass, params, state, metadata


def _upgrade_names(entries):
    """Parameters or fitted state with the names and values of :data:`_RENAMED`."""
    out = {_RENAMED.get(k, k): v for k, v in entries.items()}
    for key, values in _RENAMED_VALUES.items():
        if isinstance(out.get(key), str):
            out[key] = values.get(out[key], out[key])
    return out


def _keras_file(path, name):
    """``<name>.keras`` in ``path``, or the file of the name's old spelling if only it exists."""
    file = path / f"{name}.keras"
    if not file.is_file():
        old = [path / f"{k}.keras" for k, v in _RENAMED.items() if v == name]
        file = next((f for f in old if f.is_file()), file)
    return file


def _load_keras_file(file):
    """A ``.keras`` file read with ``safe_mode=True``; a damaged file is one clear error."""
    import keras

    if not file.is_file():
        raise FileNotFoundError(
            f"{file} is missing; a saved estimator folder holds it next to "
            f"{_ESTIMATOR_FILE}. Copy the whole folder, or save the estimator again."
        )
    if not zipfile.is_zipfile(file):
        raise ValueError(
            f"{file} is not a Keras archive (not a zip file); it is damaged or was cut "
            "off while copying. Copy it again, or save the estimator again."
        )
    try:
        with zipfile.ZipFile(file) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        broken = str(exc)
    if broken is not None:
        raise ValueError(
            f"{file} is damaged ({broken} fails its checksum); copy it again, or save the "
            "estimator again."
        )
    try:
        return keras.saving.load_model(file, safe_mode=True)
    except Exception as exc:  # Keras raises many kinds for a bad archive
        raise ValueError(
            f"{file} could not be read as a Keras model ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}); it is damaged, edited or "
            "written by another Keras version. Save the estimator again."
        ) from None


class _SerializedModel:
    """A Keras model as the bytes of its ``.keras`` file (picklable)."""

    def __init__(self, model):
        with tempfile.TemporaryDirectory() as tmp:
            file = os.path.join(tmp, "model.keras")
            model.save(file)
            with open(file, "rb") as fh:
                self.data = fh.read()

    def load(self):
        import keras

        with tempfile.TemporaryDirectory() as tmp:
            file = os.path.join(tmp, "model.keras")
            with open(file, "wb") as fh:
                fh.write(self.data)
            zipfile.ZipFile(io.BytesIO(self.data)).testzip()
            return keras.saving.load_model(file, safe_mode=True)


def _to_json(key, value):
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _to_json(key, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(key, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"fitted attribute {key} of type {type(value).__name__} cannot be saved.")


def _from_json(value):
    if isinstance(value, dict) and "__ndarray__" in value:
        dtype = np.dtype(value["dtype"])
        return np.array(value["__ndarray__"], dtype=object if dtype.kind == "O" else dtype)
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value
