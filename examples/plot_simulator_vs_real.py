"""
Simulated versus real calcium traces
====================================

Compares :func:`calgan_sklearn.datasets.make_calcium` with the CASCADE ground
truth in ``../shared/data/cascade``: the decay time of the spike-triggered
average (an exponential fitted by
:func:`calgan_sklearn.datasets.estimate_decay_time`) per indicator, and
CASCADE's noise level, which the simulator takes as a parameter.

Usage: ``python examples/plot_simulator_vs_real.py [output.png] [cascade folder]``
"""

import logging
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from calgan_sklearn.datasets import estimate_decay_time, load_cascade, make_calcium
from calgan_sklearn.metrics import noise_level

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / "simulator_vs_real.png"
root = (
    Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).parents[2] / "shared/data/cascade"
)
FS = 30.0  # common frame rate for the decay-time comparison

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # spikes outside the recordings
    real = load_cascade(root, fs=FS)
    # noise levels at each recording's own frame rate
    native = [load_cascade(f) for f in sorted(root.glob("*/*.mat"))]
real_tau = estimate_decay_time(real.calcium, real.spikes, real.fs)
real_nu = {}
for rec in native:
    real_nu.setdefault(rec.indicator[0], []).extend(noise_level(rec.calcium, rec.fs))

indicators = sorted(set(real.indicator))
rows = []
for ind in indicators:
    nu = float(np.nanmedian(real_nu[ind]))
    sim = make_calcium(
        n_neurons=6, duration=300.0, fs=FS, indicator=ind, noise_level=nu, random_state=0
    )
    sim_tau = estimate_decay_time(sim.calcium, sim.spikes, sim.fs)
    sim100 = make_calcium(
        n_neurons=6, duration=60.0, indicator=ind, noise_level=nu, random_state=0
    )
    rows.append(
        (
            ind,
            float(np.nanmedian(real_tau[real.indicator == ind])),
            float(np.nanmedian(sim_tau)),
            nu,
            float(np.median(noise_level(sim100.calcium, sim100.fs))),
        )
    )

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
x = np.arange(len(rows))
axes[0].bar(x - 0.2, [r[1] for r in rows], 0.4, label="real (CASCADE)")
axes[0].bar(x + 0.2, [r[2] for r in rows], 0.4, label="simulated")
axes[0].set(xticks=x, xticklabels=indicators, ylabel="STA decay time (s)")
axes[0].legend()
axes[1].bar(x - 0.2, [r[3] for r in rows], 0.4, label="real (median)")
axes[1].bar(x + 0.2, [r[4] for r in rows], 0.4, label="simulated")
axes[1].set(xticks=x, xticklabels=indicators, ylabel="noise level (%·s$^{-1/2}$)")
axes[1].legend()
i = int(np.flatnonzero(real.indicator == indicators[0])[0])
t = np.arange(int(60 * FS)) / FS
axes[2].plot(t, real.calcium[i, : len(t)], lw=0.6, label=f"real {indicators[0]}")
sim = make_calcium(n_neurons=1, duration=60.0, fs=FS, indicator=indicators[0], random_state=0)
axes[2].plot(t, sim.calcium[0] - 1.0, lw=0.6, label="simulated (offset -1)")
axes[2].set(xlabel="time (s)", ylabel="dF/F")
axes[2].legend(fontsize=8)
fig.tight_layout()
fig.savefig(out, dpi=120)
logging.basicConfig(level=logging.INFO, format="%(message)s")
for ind, tr, ts, nr, ns in rows:
    logging.info(
        "%s: decay real %.2f s, simulated %.2f s; noise real %.2f, simulated %.2f",
        ind,
        tr,
        ts,
        nr,
        ns,
    )
logging.info("saved %s", out)
