"""Saving, loading and pickling of the Keras estimators.

:class:`KerasPersistenceMixin` (as tslearn keeps persistence in a mixin of its
own) gives an estimator ``save`` / ``load`` to a folder of JSON plus ``.keras``
files, read back without unpickling code, and pickling (``pickle``, ``joblib``,
``clone`` of fitted copies in ``GridSearchCV(n_jobs=2)``) through the bytes of
the ``.keras`` files. :func:`load` reads any saved estimator of this package.

A saved folder holds ``estimator.json`` (class, parameters, fitted state ending
in ``_`` plus ``_seed``, optional ``metadata`` read by :func:`load_metadata`)
and one ``<attribute>.keras`` file per name in ``_keras_attributes``. Names
changed since a model could be saved (:data:`_RENAMED`) are read in their old
spelling too.

The host class provides ``_compile_model(model)`` and
``__sklearn_is_fitted__()``, and may override ``_assemble_model()`` (rebuild
``model_`` from the persisted networks when ``model_`` itself is not persisted,
e.g. the GAN's training wrapper).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["KerasPersistenceMixin", "load", "load_metadata"]

_FORMAT_VERSION = 1
_ESTIMATOR_FILE = "estimator.json"
#: Top-level keys of ``estimator.json``; ``metadata`` is optional.
_JSON_KEYS = ("format_version", "class", "params", "state", "metadata")

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


class KerasPersistenceMixin:
    """Mixin for ``save`` / ``load`` and pickling of estimators holding Keras models.

    Put it left of ``BaseEstimator``. Every concrete subclass is registered for
    :func:`load` (classes named ``Base...`` are abstract, as in scikit-learn's
    ``all_estimators``, and are not).

    Class attributes: ``_keras_attributes``, the names of the fitted Keras
    models that are persisted (default ``("model_",)``).
    """

    _keras_attributes: tuple[str, ...] = ("model_",)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Base"):
            _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls
            _REGISTRY[cls.__qualname__] = cls

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
    """Load any estimator of this package saved with ``estimator.save(path)``.

    Parameters
    ----------
    path : str or path-like
        Directory written by ``estimator.save(path)``.

    Returns
    -------
    estimator : BaseKerasEstimator
        The fitted estimator, of the class named in the folder's ``estimator.json``.
    """
    from ._base import BaseKerasEstimator

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
    from ._base import BaseKerasEstimator

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
