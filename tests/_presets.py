"""Tiny estimator settings and seeded data builders shared by the tests.

pytest's ``conftest.py`` is not meant to be imported, so what a test needs by
name at import time (settings spread into a constructor, builders called with
test-specific arguments) lives here; ``conftest.py`` turns the common cases into
fixtures. Each preset is the smallest network that still exercises the code
path under test, and trains in well under a second on two CPU cores.
"""

import numpy as np

from calgan_sklearn.datasets import make_calcium, make_windows

#: The smallest convolutional trunk of the window models.
WINDOW_NET = dict(filters=4, kernel_size=3, depth=1, batch_size=32)
TINY_CLASSIFIER = dict(WINDOW_NET, epochs=2)
TINY_AUTOENCODER = dict(WINDOW_NET, latent_dim=3, epochs=2)
TINY_GAN = dict(WINDOW_NET, latent_dim=4, epochs=1)
#: CalciumGAN in trace mode: 2 s critic crops at 30 Hz, batches of 8.
TINY_TRACE_GAN = dict(
    filters=4,
    kernel_size=3,
    depth=1,
    latent_dim=2,
    batch_size=8,
    epochs=1,
    fs=30.0,
    crop_seconds=2.0,
)
#: DeepSpikeInference: two dilated layers, one member, one epoch on 64-frame crops;
#: float32 inference, so rates do not depend on the CPU running the tests.
TINY_DEEP = dict(
    filters=8,
    depth=2,
    crop_length=64,
    batch_size=16,
    epochs=1,
    ensemble_size=1,
    inference_dtype="float32",
    random_state=0,
)
#: Smaller still, for scikit-learn's estimator checks (dozens of fits on toy data).
CHECKS_NET = dict(filters=2, kernel_size=3, depth=1, epochs=1, batch_size=64, random_state=0)
CHECKS_DEEP = dict(
    filters=2,
    depth=1,
    crop_length=16,
    batch_size=4,
    epochs=1,
    ensemble_size=1,
    inference_dtype="float32",
    random_state=0,
)


def simulated_windows(
    n=300, window=32, target="center", seed=0, n_neurons=4, center_width=4, noise_level=1.0
):
    """Seeded simulated GCaMP6f windows, about half of them with a spike near the centre.

    Returns ``(X, y, groups)`` as :func:`calgan_sklearn.datasets.make_windows` does,
    ``n`` windows drawn without replacement.
    """
    data = make_calcium(
        n_neurons=n_neurons,
        duration=40.0,
        indicator="GCaMP6f",
        firing_rate=2.0,
        noise_level=noise_level,
        random_state=seed,
    )
    X, y, groups = make_windows(
        data.calcium,
        data.spikes,
        window=window,
        stride=4,
        target=target,
        groups=np.arange(n_neurons),
        center_width=center_width,
    )
    rng = np.random.default_rng(seed)
    if target in ("center", "count"):
        pos, neg = np.flatnonzero(y > 0), np.flatnonzero(y == 0)
        k = min(n // 2, len(pos), len(neg))
        idx = np.concatenate(
            [rng.choice(pos, k, replace=False), rng.choice(neg, n - k, replace=False)]
        )
    else:
        idx = rng.choice(len(X), min(n, len(X)), replace=False)
    idx = rng.permutation(idx)
    return X[idx], y[idx], groups[idx]


def ar1_traces(
    seed,
    n_traces=4,
    n_frames=4000,
    fs=100.0,
    tau=0.5,
    noise=0.05,
    rate=0.01,
    gain=1.0,
    offset=2.0,
    kernel_taus=8,
):
    """Poisson spikes through an exponential kernel, plus white noise and an offset.

    Returns ``(calcium, spikes)`` of shape ``(n_traces, n_frames)``:
    ``gain * (spikes * kernel + noise + offset)``, the kernel decaying with time
    constant ``tau`` seconds and cut after ``kernel_taus`` time constants.
    """
    rng = np.random.default_rng(seed)
    spikes = rng.poisson(rate, size=(n_traces, n_frames)).astype(float)
    kernel = np.exp(-np.arange(int(kernel_taus * tau * fs)) / (tau * fs))
    clean = np.array([np.convolve(s, kernel)[:n_frames] for s in spikes])
    return gain * (clean + rng.normal(scale=noise, size=clean.shape) + offset), spikes
