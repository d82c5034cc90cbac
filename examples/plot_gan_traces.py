"""
Real and CalciumGAN-rendered calcium of held-out neurons
========================================================

Trains the whole-trace :class:`calgan_sklearn.CalciumGAN` on the training
neurons of one CASCADE dataset (DS09, GCaMP6f, mouse V1, resampled to 30 Hz),
renders the real spike trains of neurons it never saw (in the style of their
own traces: ``like=`` sets each rendering's baseline and noise level) and draws
:func:`calgan_sklearn.evaluation.plot_realism`: real and rendered traces of the
same spike trains side by side, the spike-triggered averages around isolated
spikes and the mean log power spectra of all held-out traces.

Usage: ``python examples/plot_gan_traces.py [output.png] [cascade dataset folder]``
(about 2 minutes on a 2-core CPU; needs the optional ``plot`` extra). The figure
in the documentation, ``docs/_static/gan_traces.png``, was made by
``python examples/plot_gan_traces.py docs/_static/gan_traces.png``.
"""

import logging
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from calgan_sklearn import CalciumGAN
from calgan_sklearn.datasets import load_cascade
from calgan_sklearn.evaluation import plot_realism, realism_report, split_neurons

FS = 30.0
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / "gan_traces.png"
folder = (
    Path(sys.argv[2])
    if len(sys.argv) > 2
    else Path(__file__).resolve().parents[2] / "shared/data/cascade/DS09-GCaMP6f-m-V1"
)
logging.basicConfig(level=logging.INFO, format="%(message)s")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # repaired frame times, dropped spikes
    data = load_cascade(folder, fs=FS)
train, test = split_neurons(data, test_size=0.3, random_state=0)

start = time.perf_counter()
gan = CalciumGAN(fs=FS, epochs=50, random_state=0).fit(train.calcium, train.spikes)
train_s = time.perf_counter() - start
rendered, _ = gan.sample(y=test.spikes, like=test.calcium, random_state=0)

# the first trace of every held-out neuron first, so the top rows show different neurons
first = np.unique(test.neuron, return_index=True)[1]
order = np.concatenate([first, np.setdiff1d(np.arange(len(test.neuron)), first)])
real, rendered, spikes = test.calcium[order], rendered[order], test.spikes[order]

fig = plot_realism(real, rendered, spikes, FS, n_traces=3, labels=("real", "CalciumGAN"))
fig.suptitle(
    f"{folder.name} at {FS:g} Hz: {len(np.unique(test.neuron))} held-out neurons "
    f"({len(real)} traces) rendered by a CalciumGAN trained on "
    f"{len(np.unique(train.neuron))} others"
)
fig.savefig(out, dpi=90)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    report = realism_report(
        real,
        spikes,
        FS,
        {"gan": lambda s: rendered},
        indicator="GCaMP6f",
        groups=test.neuron[order],
    )
logging.info("GAN trained in %.0f s on %d traces", train_s, len(train.calcium))
logging.info("%s", report.to_string(index=False, float_format="%.3f"))
logging.info("saved %s", out)
