"""CalciumAutoencoder: a (variational) convolutional autoencoder as a transformer."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted

from ._base import COMMON_PARAMETER_CONSTRAINTS, BaseKerasEstimator
from ._networks import GaussianSampling, build_decoder, build_encoder
from ._scaling import NORMALIZE_CONSTRAINT, WindowScalingMixin

__all__ = ["CalciumAutoencoder"]


class CalciumAutoencoder(TransformerMixin, WindowScalingMixin, BaseKerasEstimator):
    """Convolutional autoencoder of fluorescence windows (a scikit-learn transformer).

    The encoder is the strided convolution trunk shared with
    :class:`SpikeClassifier` and a dense code; the decoder upsamples the code
    back to a window. ``transform`` gives the code, ``inverse_transform`` the
    reconstructed windows, so it fits in a pipeline before any classifier, e.g.
    ``make_pipeline(CalciumAutoencoder(), LogisticRegression())``. With
    ``variational=True`` it is a (beta-)VAE and :meth:`sample` draws new windows.

    With ``normalize="noise"`` each window's baseline and noise level are taken
    out before encoding and appended to the code as two extra features
    (``baseline``, ``log_noise``), so the transform stays invertible.

    Parameters
    ----------
    latent_dim : int, default=8
        Size of the learned code.
    filters : int, default=16
        Width of the first convolution block.
    kernel_size : int, default=5
        Convolution kernel size in frames.
    depth : int, default=2
        Strided blocks of the encoder (upsampling blocks of the decoder).
    variational : bool, default=False
        Train a variational autoencoder (Gaussian code, KL penalty).
    beta : float, default=1.0
        Weight of the KL term when ``variational``.
    normalize : {"noise", "global"} or None, default="noise"
        Input scaling (as in :class:`SpikeClassifier`).
    {common_parameters}

    Attributes
    ----------
    encoder_ : keras.Model
        ``(n, window_length, 1)`` -> code ``(n, latent_dim)`` (and log-variance
        if variational).
    decoder_ : keras.Model
        Code ``(n, latent_dim)`` -> normalised windows ``(n, window_length, 1)``.
    model_ : keras.Model
        The trained encoder-decoder.
    history_ : dict of str to list of float
        Per-epoch ``loss`` (and ``val_loss``).
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        Window length.

    See Also
    --------
    SpikeClassifier : Supervised window classifier.
    CalciumGAN : Generative model with spike conditioning.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models import CalciumAutoencoder
    >>> X = np.random.default_rng(0).normal(size=(64, 16))
    >>> ae = CalciumAutoencoder(latent_dim=3, filters=4, depth=1, epochs=1, random_state=0)
    >>> ae.fit_transform(X).shape
    (64, 5)
    >>> ae.get_feature_names_out()[:4].tolist()
    ['latent0', 'latent1', 'latent2', 'baseline']
    """

    _keras_attributes = ("encoder_", "decoder_")

    _parameter_constraints = {
        **COMMON_PARAMETER_CONSTRAINTS,
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "filters": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "variational": ["boolean"],
        "beta": [Interval(numbers.Real, 0, None, closed="left")],
        "normalize": NORMALIZE_CONSTRAINT,
    }

    def __init__(
        self,
        *,
        latent_dim=8,
        filters=16,
        kernel_size=5,
        depth=2,
        variational=False,
        beta=1.0,
        normalize="noise",
        epochs=20,
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
        self.latent_dim = latent_dim
        self.filters = filters
        self.kernel_size = kernel_size
        self.depth = depth
        self.variational = variational
        self.beta = beta
        self.normalize = normalize
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
    def fit(self, X, y=None):
        """Train the autoencoder to reconstruct windows ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_windows, window_length)
        y : Ignored

        Returns
        -------
        self : CalciumAutoencoder
        """
        return self._fit(X)

    def partial_fit(self, X, y=None):
        """Train one more epoch (building the networks on the first call)."""
        return self._fit(X, partial=True)

    def transform(self, X):
        """Encode windows: the code (the mean code if variational) [+ baseline, log_noise].

        Returns
        -------
        Xt : ndarray of shape (n_windows, n_features_out)
        """
        check_is_fitted(self)
        X = self._check_windows(X, reset=False)
        Z, loc, scale = self._scale(X)
        code = self._predict_network(self.encoder_, Z[..., None])
        code = (code[0] if self.variational else code).astype(np.float64)
        return np.column_stack([code, loc, np.log(scale)]) if self._has_stats() else code

    def inverse_transform(self, X):
        """Decode codes (as returned by :meth:`transform`) into windows in data units."""
        check_is_fitted(self)
        n_out = self.latent_dim + 2 * self._has_stats()
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != n_out:
            raise ValueError(
                f"codes have {X.shape[1]} columns but this autoencoder's transform gives "
                f"{n_out} ({', '.join(self.get_feature_names_out()[:4])}, ...)."
            )
        if self._has_stats():
            loc, scale = X[:, -2], np.exp(X[:, -1])
        else:
            loc, scale = np.full(len(X), self.input_offset_), np.full(len(X), self.input_scale_)
        return self._decode(X[:, : self.latent_dim], loc, scale)

    def score(self, X, y=None):
        """Negative mean squared reconstruction error, in data units (higher is better)."""
        X = self._check_windows(X, reset=False) if hasattr(self, "n_iter_") else X
        return -float(np.mean((self.inverse_transform(self.transform(X)) - X) ** 2))

    def sample(self, n_samples=1, random_state=None):
        """Draw windows from a variational autoencoder's prior.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, window_length)
        y : None
        """
        check_is_fitted(self)
        if not self.variational:
            raise ValueError(
                "sample needs a variational autoencoder; refit with variational=True."
            )
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(random_state)
        code = rng.standard_normal((n_samples, self.latent_dim))
        loc, scale = self._draw_loc_scale(n_samples, rng)
        return self._decode(code, loc, scale), None

    def get_feature_names_out(self, input_features=None):
        """``latent0, latent1, ...`` (and ``baseline``, ``log_noise`` with window scaling)."""
        check_is_fitted(self)
        names = [f"latent{i}" for i in range(self.latent_dim)]
        return np.asarray(names + ["baseline", "log_noise"] * self._has_stats(), dtype=object)

    # ---------------------------------------------------------------- hooks
    def _has_stats(self):
        return self.normalize == "noise"

    def _learn_data(self, X, y):
        self._fit_scaling(X)

    def _build_model(self):
        arch = dict(
            filters=self.filters,
            kernel_size=self.kernel_size,
            depth=self.depth,
            dtype=self._dtype_policy(),
        )
        self.encoder_ = build_encoder(
            self.n_features_in_, self.latent_dim, variational=self.variational, **arch
        )
        self.decoder_ = build_decoder(self.n_features_in_, self.latent_dim, **arch)
        return self._assemble_model()

    def _assemble_model(self):
        import keras

        inputs = keras.Input((self.n_features_in_, 1), name="window")
        code = self.encoder_(inputs)
        if self.variational:
            code = GaussianSampling(self.beta, seed=self._seed, name="sampling")(code)
        return keras.Model(inputs, self.decoder_(code), name="autoencoder")

    def _loss(self):
        return "mse"

    def _network_arrays(self, X, y):
        x = self._scale(X)[0][..., None]
        return x, x

    def _decode(self, code, loc, scale):
        Z = self._predict_network(self.decoder_, np.asarray(code, dtype=np.float32))[..., 0]
        return self._unscale(Z, loc, scale)
