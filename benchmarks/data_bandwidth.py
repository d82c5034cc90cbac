"""Effective bandwidth of each dataset in ../shared/data (why bandwidth augmentation).

Usage::

    python benchmarks/data_bandwidth.py

For every dataset (all traces at 100 Hz), the share of the power of the
frame-to-frame differences (Welch, 2.56 s segments) above each frequency. A
recording made at ``f`` Hz and upsampled to 100 Hz has no power above ``f / 2``.
No spike labels are used.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.signal import welch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_pretrained import DEFAULT_DATA, load_all_data  # noqa: E402

FREQS = (2, 4, 6, 8, 10, 15, 20, 30, 40)


def main():
    data = load_all_data(DEFAULT_DATA)
    print("share of the power of the differenced traces above f Hz")
    print(f"{'dataset':40s}" + "".join(f"{f:>7d}" for f in FREQS))
    for name in np.unique(data.dataset):
        total = 0.0
        for x in data.calcium[data.dataset == name]:
            x = x[~np.isnan(x)]
            f, p = welch(np.diff(x), fs=data.fs, nperseg=256)
            total = total + p / p.sum()
        total = total / total.sum()
        print(f"{name:40s}" + "".join(f"{total[f > v].sum():7.2f}" for v in FREQS))


if __name__ == "__main__":
    main()
