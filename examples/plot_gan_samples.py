"""Real fluorescence windows next to CalciumGAN windows rendered from the same spike trains.

A CalciumGAN conditioned on spike counts per frame is trained on 32-frame
windows (SpikeFinder 4, 5, 6 from ../shared/data when present, simulated
windows otherwise); each column of the figure shows a real window and a
generated window for the same spike train, plus the mean response to a single
spike. The PNG goes to the path given as the first argument (default
``gan_samples.png`` in the current directory).

Run: ``python examples/plot_gan_samples.py [out.png]`` (about a minute on CPU).
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from calgan_sklearn.datasets import load_spikefinder, make_calcium, make_windows
from calgan_sklearn.models import CalciumGAN

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "spikefinder"
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / "gan_samples.png"

if DATA.is_dir():
    data = load_spikefinder(DATA)
else:
    data = make_calcium(n_neurons=6, duration=120.0, indicator="GCaMP6s", random_state=0)
X, S, _ = make_windows(data.calcium, data.spikes, window=32, stride=8, target="subwindow")
rng = np.random.default_rng(0)
keep = rng.choice(len(X), size=min(3000, len(X)), replace=False)
X, S = X[keep], S[keep]

gan = CalciumGAN(
    filters=16, latent_dim=16, n_critic=1, epochs=15, learning_rate=1e-3, random_state=0
).fit(X, S)

show = rng.choice(np.flatnonzero(S.sum(1) > 0), size=4, replace=False)
fake, _ = gan.sample(y=S[show], random_state=1)
one = np.zeros((200, 32))
one[:, 8] = 1
mean_spike = gan.sample(y=one, random_state=2)[0]
mean_quiet = gan.sample(y=np.zeros((200, 32)), random_state=2)[0]

fig, axes = plt.subplots(2, 5, figsize=(15, 5))
t = np.arange(32) / data.fs
for col, i in enumerate(show):
    for row, (trace, name) in enumerate([(X[i], "real"), (fake[col], "generated")]):
        ax = axes[row, col]
        ax.plot(t, trace, color="k" if row == 0 else "tab:red")
        for frame in np.flatnonzero(S[i]):
            ax.axvline(frame / data.fs, color="tab:blue", alpha=0.4)
        ax.set_title(f"{name}, {int(S[i].sum())} spike(s)")
base = lambda w: w - np.percentile(w, 20, axis=1, keepdims=True)  # noqa: E731
axes[0, 4].plot(t, base(mean_spike).mean(0), color="tab:red", label="one spike at 80 ms")
axes[0, 4].plot(t, base(mean_quiet).mean(0), color="gray", label="no spike")
axes[0, 4].axvline(8 / data.fs, color="tab:blue", alpha=0.4)
axes[0, 4].set_title("mean generated window")
axes[0, 4].legend(fontsize=8)
axes[1, 4].plot(gan.history_["w_dist"])
axes[1, 4].set_title("critic's Wasserstein estimate")
axes[1, 4].set_xlabel("epoch")
for ax in axes[1, :4]:
    ax.set_xlabel("time (s)")
fig.tight_layout()
fig.savefig(out, dpi=100)
print(f"wrote {out}")
