"""CalciumGAN: a conditional Wasserstein GAN that renders fluorescence windows."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_consistent_length, check_is_fitted

from ._base import COMMON_PARAMETER_CONSTRAINTS, BaseKerasEstimator
from ._networks import ConditionalWGAN, build_critic, build_generator
from ._scaling import NORMALIZE_CONSTRAINT, WindowScalingMixin

__all__ = ["CalciumGAN"]

_BANK_SIZE = 1024


class CalciumGAN(WindowScalingMixin, BaseKerasEstimator):
    """Conditional Wasserstein GAN (WGAN-GP) of fluorescence windows.

    The generator maps Gaussian noise, and optionally a condition, to a window
    of fluorescence; the critic (a :func:`build_conv_trunk` stack, the same
    network family as :class:`SpikeClassifier`) scores windows. Training is a
    ``keras.Model`` with its own ``train_step``
    (:class:`~calgan_sklearn.models._networks.ConditionalWGAN`): ``n_critic``
    critic updates, then one generator update, per batch.

    Why WGAN-GP: its critic loss estimates the Wasserstein distance, which
    gives useful gradients even when real and generated windows barely overlap
    (common early on with sharp, sparse transients), and the gradient penalty
    (Gulrajani et al. 2017) enforces the critic's Lipschitz bound without
    changing the critic's layers. The latter matters here: the critic is a
    plain convolution stack whose weights transfer one-to-one to
    :class:`SpikeClassifier` (``init=gan``); spectral normalisation would
    rescale them. No batch normalisation is used (the penalty is per sample).

    Conditioning is chosen by ``y`` in :meth:`fit`:

    - ``y=None``: unconditional.
    - ``y`` of shape ``(n_windows,)``: a class label per window (e.g. spike /
      no spike), given to both networks as one-hot channels over the window.
    - ``y`` of shape ``(n_windows, window_length)``: spike counts per frame, so
      the generator renders the fluorescence a given spike train would
      produce (its causal dilated convolutions let a spike drive a transient
      that rises and decays after it).

    Windows are normalised per window (see ``normalize``) and the (baseline,
    noise) of training windows is kept, so :meth:`sample` returns windows in
    data units.

    Parameters
    ----------
    latent_dim : int, default=16
        Dimension of the generator's noise input.
    filters : int, default=16
        Width of the first convolution block of both networks.
    kernel_size : int, default=5
        Convolution kernel size in frames.
    depth : int, default=2
        Strided blocks of the critic and upsampling blocks of the generator.
    n_critic : int, default=2
        Critic updates per generator update.
    gp_weight : float, default=10.0
        Weight of the gradient penalty.
    normalize : {"noise", "global"} or None, default="noise"
        Input scaling (as in :class:`SpikeClassifier`).
    {common_parameters}

    Attributes
    ----------
    generator_ : keras.Model
        ``noise (n, latent_dim)`` [+ ``condition (n, window_length, c)``] ->
        normalised windows ``(n, window_length, 1)``.
    critic_ : keras.Model
        The critic, ``(n, window_length, 1 + c)`` -> ``(n, 1)`` scores.
    model_ : ConditionalWGAN
        The training wrapper around both.
    conditioning_ : {"label", "spikes"} or None
        What ``y`` was in ``fit``.
    classes_ : ndarray of shape (n_classes,)
        Labels, when ``conditioning_ == "label"``.
    class_prior_ : ndarray of shape (n_classes,)
        Label frequencies, used to draw labels in :meth:`sample`.
    spike_bank_ : ndarray of shape (n_bank, window_length)
        Training spike trains (up to 1024) drawn from when sampling
        spike-conditioned windows without ``y``.
    history_ : dict of str to list of float
        Per-epoch ``d_loss``, ``g_loss``, ``gp`` and ``w_dist``.
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        Window length.

    See Also
    --------
    SpikeClassifier : Classifier that can start from this GAN's critic.
    CalciumAutoencoder : Variational autoencoder, another generative model.

    Examples
    --------
    >>> import numpy as np
    >>> from calgan_sklearn.models import CalciumGAN
    >>> X = np.random.default_rng(0).normal(size=(64, 16))
    >>> gan = CalciumGAN(filters=4, latent_dim=4, depth=1, epochs=1, random_state=0).fit(X)
    >>> Xs, ys = gan.sample(3, random_state=0)
    >>> Xs.shape, ys
    ((3, 16), None)
    """

    _keras_attributes = ("generator_", "critic_")
    _monitor = "val_w_dist"

    _parameter_notes = {
        "learning_rate": "Both networks use it, with ``beta_1=0.5, beta_2=0.9``.",
        "validation_fraction": "``val_w_dist`` is the critic's Wasserstein estimate on the "
        "held-out windows, a rough convergence signal.",
    }

    _parameter_constraints = {
        **COMMON_PARAMETER_CONSTRAINTS,
        "latent_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "filters": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_critic": [Interval(numbers.Integral, 1, None, closed="left")],
        "gp_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "normalize": NORMALIZE_CONSTRAINT,
    }

    def __init__(
        self,
        *,
        latent_dim=16,
        filters=16,
        kernel_size=5,
        depth=2,
        n_critic=2,
        gp_weight=10.0,
        normalize="noise",
        epochs=50,
        batch_size=64,
        learning_rate=5e-4,
        validation_fraction=0.0,
        patience=10,
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
        self.n_critic = n_critic
        self.gp_weight = gp_weight
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
        """Train the GAN on windows ``X``, conditioned on ``y`` if given.

        Parameters
        ----------
        X : array-like of shape (n_windows, window_length)
            Fluorescence windows.
        y : None, array-like of shape (n_windows,) or (n_windows, window_length)
            Nothing (unconditional), a label per window, or spike counts per
            frame of each window.

        Returns
        -------
        self : CalciumGAN
        """
        return self._fit(X, y)

    def partial_fit(self, X, y=None):
        """Train one more epoch (building the networks on the first call)."""
        return self._fit(X, y, partial=True)

    def sample(self, n_samples=1, y=None, random_state=None):
        """Generate windows in data units.

        Parameters
        ----------
        n_samples : int, default=1
            Number of windows; ignored when ``y`` is given.
        y : array-like, default=None
            Conditions to render: labels ``(n,)`` or spike trains
            ``(n, window_length)``, as in ``fit``. ``None`` draws them from the
            training data (label frequencies / training spike trains).
        random_state : int, RandomState instance or None, default=None
            Seed of the noise, conditions and (baseline, noise level) draws.

        Returns
        -------
        X : ndarray of shape (n, window_length)
            Generated windows.
        y : ndarray of shape (n,) or (n, window_length), or None
            The conditions they follow (None if unconditional).
        """
        check_is_fitted(self)
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(random_state)
        y = self._sample_conditions(n_samples, y, rng)
        n = n_samples if y is None else len(y)
        z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        inputs = z if y is None else [z, self._condition_array(y)]
        Z = self._predict_network(self.generator_, inputs)[..., 0]
        loc, scale = self._draw_loc_scale(n, rng)
        return self._unscale(Z, loc, scale), y

    def critic_score(self, X, y=None):
        """The critic's score of windows ``X`` (higher = more real-looking)."""
        check_is_fitted(self)
        X, y = self._check_data(X, y, reset=False)
        x = self._scale(X)[0][..., None]
        if self.conditioning_ is not None:
            x = np.concatenate([x, self._condition_array(y)], axis=-1)
        return self._predict_network(self.critic_, x)[:, 0]

    # ---------------------------------------------------------------- hooks
    def _check_y(self, y, X, *, reset):
        mode = self._conditioning_of(y)
        if not reset and mode != self.conditioning_:
            raise ValueError(
                f"this CalciumGAN was fitted with conditioning={self.conditioning_!r} but "
                f"y now means {mode!r}; pass the same kind of y, or refit with "
                "warm_start=False."
            )
        if y is None:
            return None
        if mode == "label":
            y = check_array(y, ensure_2d=False, dtype=None)
            check_consistent_length(X, y)
            if not reset:
                self._check_known_labels(y)
            return y
        return self._check_spike_windows(y, X.shape)

    @staticmethod
    def _conditioning_of(y):
        if y is None:
            return None
        return "spikes" if np.ndim(y) == 2 else "label"

    @staticmethod
    def _check_spike_windows(y, shape):
        y = check_array(y, dtype=np.float64, ensure_all_finite=True, input_name="y")
        if y.shape != tuple(shape):
            raise ValueError(
                f"spike windows y have shape {y.shape} but X has shape {tuple(shape)}; "
                "conditioning on spikes needs one spike count per frame of each window "
                "(make_windows(..., target='subwindow'))."
            )
        if (y < 0).any():
            raise ValueError("spike windows y must be non-negative spike counts.")
        return y

    def _learn_data(self, X, y):
        self._fit_scaling(X)
        self.conditioning_ = self._conditioning_of(y)
        if self.conditioning_ == "label":
            self.classes_, counts = np.unique(y, return_counts=True)
            self.class_prior_ = counts / counts.sum()
        elif self.conditioning_ == "spikes":
            keep = check_random_state(self._seed).permutation(len(y))[:_BANK_SIZE]
            self.spike_bank_ = y[keep]

    def _n_cond_channels(self):
        return {None: 0, "spikes": 1}.get(self.conditioning_, len(getattr(self, "classes_", [])))

    def _condition_array(self, y):
        """Condition channels ``(n, window_length, c)`` for labels or spike windows."""
        if self.conditioning_ == "label":
            onehot = (np.asarray(y)[:, None] == self.classes_[None, :]).astype(np.float32)
            return np.repeat(onehot[:, None, :], self.n_features_in_, axis=1)
        return np.asarray(y, dtype=np.float32)[..., None]

    def _build_model(self):
        arch = dict(
            filters=self.filters,
            kernel_size=self.kernel_size,
            depth=self.depth,
            dtype=self._dtype_policy(),
        )
        c = self._n_cond_channels()
        self.generator_ = build_generator(self.n_features_in_, self.latent_dim, c, **arch)
        self.critic_ = build_critic(self.n_features_in_, c, **arch)
        return self._assemble_model()

    def _assemble_model(self):
        return ConditionalWGAN(
            self.generator_,
            self.critic_,
            self.latent_dim,
            n_critic=self.n_critic,
            gp_weight=self.gp_weight,
            seed=self._seed,
        )

    def _compile_model(self, model):
        model.compile(
            d_optimizer=self._make_optimizer(beta_1=0.5, beta_2=0.9),
            g_optimizer=self._make_optimizer(beta_1=0.5, beta_2=0.9),
            jit_compile=self.jit_compile,
        )

    def _stratify_labels(self, y):
        return y if self.conditioning_ == "label" else None

    def _network_arrays(self, X, y):
        x = self._scale(X)[0][..., None]
        return (x,) if y is None else (x, self._condition_array(y))

    def _sample_conditions(self, n_samples, y, rng):
        if self.conditioning_ is None:
            if y is not None:
                raise ValueError("this CalciumGAN was fitted without y; sample it with y=None.")
            return None
        if y is None:
            if self.conditioning_ == "label":
                return self.classes_[
                    rng.choice(len(self.classes_), n_samples, p=self.class_prior_)
                ]
            return self.spike_bank_[rng.randint(len(self.spike_bank_), size=n_samples)]
        if self.conditioning_ == "spikes":
            y = np.atleast_2d(np.asarray(y, dtype=np.float64))
            return self._check_spike_windows(y, (len(y), self.n_features_in_))
        y = np.atleast_1d(np.asarray(y))
        self._check_known_labels(y)
        return y

    def _check_known_labels(self, y):
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if len(unknown):
            raise ValueError(
                f"y has labels {unknown[:10].tolist()} not seen in fit; this CalciumGAN "
                f"was fitted on {self.classes_.tolist()}."
            )

    def _restore_model(self):
        if not hasattr(self, "_seed"):
            self._seed = 0
        super()._restore_model()
