"""SpikeClassifier: the GAN's critic network turned into a window classifier."""

from __future__ import annotations

import numbers
import os

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from ._base import COMMON_PARAMETER_CONSTRAINTS, BaseKerasEstimator
from ._networks import build_classifier, copy_trunk_weights
from ._scaling import NORMALIZE_CONSTRAINT, WindowScalingMixin

__all__ = ["SpikeClassifier"]


class SpikeClassifier(ClassifierMixin, WindowScalingMixin, BaseKerasEstimator):
    """Classify windows of fluorescence (spike / no spike, spike counts, any labels).

    A strided 1-D convolutional network, the same trunk as
    :class:`CalciumGAN`'s critic (:func:`~calgan_sklearn.models._networks.build_conv_trunk`),
    with a linear softmax head, trained with cross-entropy. Labels can be any
    hashable values (ints, strings); two or more classes.

    The semi-supervised route: with ``init`` set to a :class:`CalciumGAN`
    (fitted on many unlabelled windows), ``fit`` copies the GAN critic's trunk
    weights into the classifier before training on the few labelled windows.

    Parameters
    ----------
    filters : int, default=16
        Filters of the first convolution; block ``i`` has ``filters * 2**i``.
    kernel_size : int, default=5
        Convolution kernel size in frames.
    depth : int, default=2
        Number of strided convolution blocks.
    dropout : float, default=0.0
        Dropout rate before the output layer.
    normalize : {"noise", "global"} or None, default="noise"
        Input scaling. ``"noise"`` removes each window's baseline (its 20th
        percentile) and divides by its robust noise SD
        (:func:`calgan_sklearn.signal.noise_sd`), which makes recordings with
        different units and indicators comparable; ``"global"`` standardises
        with the training mean and std; ``None`` uses the raw values.
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss (as in scikit-learn); ``"balanced"``
        compensates rare spike windows.
    init : CalciumGAN, str, path-like or None, default=None
        Start from a GAN's critic: a fitted :class:`CalciumGAN`, or the directory
        of one saved with ``CalciumGAN.save``. The GAN must have the same
        ``filters``, ``kernel_size``, ``depth`` and window length. It is not
        modified. An unfitted CalciumGAN (e.g. after ``clone`` in
        ``GridSearchCV``) is cloned and fitted on the training windows first;
        pass a saved path to avoid refitting in a search.
    {common_parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    model_ : keras.Model
        The network, ``(n, window_length, 1)`` -> ``(n, n_classes)`` logits.
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``accuracy`` (and ``val_*``).
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        Window length.
    input_offset_, input_scale_ : float
        Global offset and factor of the input scaling.

    See Also
    --------
    CalciumGAN : The generative model whose critic can initialise this classifier.
    CalciumAutoencoder : Unsupervised window features for a linear classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models import SpikeClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 16))
    >>> y = (X[:, 8] > 0).astype(int)
    >>> clf = SpikeClassifier(filters=4, depth=1, epochs=1, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    """

    _parameter_notes = {"validation_fraction": "The split is stratified by class."}

    _parameter_constraints = {
        **COMMON_PARAMETER_CONSTRAINTS,
        "filters": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "normalize": NORMALIZE_CONSTRAINT,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "init": [HasMethods(["fit", "sample"]), str, os.PathLike, None],
    }

    def __init__(
        self,
        *,
        filters=16,
        kernel_size=5,
        depth=2,
        dropout=0.0,
        normalize="noise",
        class_weight=None,
        init=None,
        epochs=10,
        batch_size=64,
        learning_rate=1e-3,
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
        self.filters = filters
        self.kernel_size = kernel_size
        self.depth = depth
        self.dropout = dropout
        self.normalize = normalize
        self.class_weight = class_weight
        self.init = init
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags

    # ---------------------------------------------------------------- public
    def fit(self, X, y):
        """Fit the classifier on windows ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_windows, window_length)
            Fluorescence windows.
        y : array-like of shape (n_windows,)
            Labels (at least two classes).

        Returns
        -------
        self : SpikeClassifier
        """
        return self._fit(X, y)

    def partial_fit(self, X, y, classes=None):
        """Train one more epoch on ``X``, ``y`` (building the network on the first call).

        Parameters
        ----------
        X : array-like of shape (n_windows, window_length)
        y : array-like of shape (n_windows,)
        classes : array-like of shape (n_classes,), default=None
            All labels, needed on the first call when ``y`` lacks some.

        Returns
        -------
        self : SpikeClassifier
        """
        return self._fit(X, y, partial=True, classes=classes)

    def decision_function(self, X):
        """Logits: ``(n,)`` log-odds of ``classes_[1]`` if binary, else ``(n, n_classes)``."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_windows, n_classes)``, columns as ``classes_``."""
        logits = self._logits(X).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba`."""
        return np.log(np.clip(self.predict_proba(X), 1e-300, None))

    def predict(self, X):
        """Most probable class of each window."""
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    # ---------------------------------------------------------------- hooks
    def _check_y(self, y, X, *, reset):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        if not reset:
            self._check_known_labels(y, self.classes_)
        return y

    def _check_fit_params(self, X, y, *, reset, classes=None):
        """The classes of a new network: ``classes`` if given (``partial_fit``), else ``y``'s."""
        if not reset:
            return {}  # the network's classes_ are fixed; _check_y compared y with them
        classes = np.unique(y) if classes is None else np.unique(classes)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}) in {len(y)} windows; "
                f"{type(self).__name__} needs at least two classes, e.g. windows with "
                "and without spikes."
            )
        self._check_known_labels(y, classes)
        return {"classes": classes}

    @staticmethod
    def _check_known_labels(y, known):
        unknown = np.setdiff1d(np.unique(y), known)
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown[:10].tolist()} that are not among the "
                f"classes {list(known)}; pass all labels as classes= on the first "
                "partial_fit call, or refit."
            )

    def _check_params(self, X):
        if self.init is not None and not isinstance(self.init, (str, os.PathLike)):
            from ._gan import CalciumGAN

            if not isinstance(self.init, CalciumGAN):
                raise ValueError(
                    f"init must be a CalciumGAN, the directory of a saved one, or None; "
                    f"got {type(self.init).__name__}."
                )

    def _learn_data(self, X, y, *, classes):
        self._fit_scaling(X)
        self.classes_ = classes
        return {"critic": self._resolve_init(X)}

    def _resolve_init(self, X):
        """The critic whose trunk starts the classifier, or None."""
        if self.init is None:
            return None
        from ._gan import CalciumGAN

        if isinstance(self.init, (str, os.PathLike)):
            gan = CalciumGAN.load(self.init)
        elif not self.init.__sklearn_is_fitted__():
            gan = clone(self.init).fit(X)
        else:
            gan = self.init
        mine = (self.filters, self.kernel_size, self.depth, X.shape[1])
        theirs = (gan.filters, gan.kernel_size, gan.depth, gan.n_features_in_)
        if mine != theirs:
            raise ValueError(
                "init's critic has (filters, kernel_size, depth, window_length) = "
                f"{theirs} but this classifier has {mine}; build both with the same "
                "architecture and window length."
            )
        return gan.critic_

    def _build_model(self, critic=None):
        model = build_classifier(
            self.n_features_in_,
            len(self.classes_),
            filters=self.filters,
            kernel_size=self.kernel_size,
            depth=self.depth,
            dropout=self.dropout,
            dtype=self._dtype_policy(),
        )
        if critic is not None:
            copy_trunk_weights(critic, model)
        return model

    def _loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def _metrics(self):
        return ["accuracy"]

    def _stratify_labels(self, y):
        return y

    def _network_arrays(self, X, y):
        x = self._scale(X)[0][..., None]
        target = np.searchsorted(self.classes_, y).astype(np.int32)
        if self.class_weight is None:
            return x, target
        weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        return x, target, weights[target].astype(np.float32)

    def _logits(self, X):
        check_is_fitted(self)
        X = self._check_windows(X, reset=False)
        return self._predict_network(self.model_, self._scale(X)[0][..., None])
