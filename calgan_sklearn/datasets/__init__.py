"""Loaders for ground-truth calcium imaging data, the simulator and window extraction.

Every loader returns a :class:`sklearn.utils.Bunch` with ``calcium`` and
``spikes`` arrays of shape (n_traces, n_frames), NaN-padded at the end, the frame
rate ``fs`` and per-trace ``dataset`` / ``neuron`` / ``indicator`` labels usable
as ``groups=`` for scikit-learn's group splitters.
"""

# moved to calgan_sklearn.signal; importable from here as before
from ..signal import bin_spike_times, rebin_counts, resample_calcium, resample_traces
from ._auto import concat_bunches, detect_layout, load_folder
from ._cascade import load_cascade
from ._csv import read_calcium_csv, read_traces_csv, write_rates_csv
from ._formats import (
    load_caiman,
    load_npy,
    load_nwb,
    load_recording,
    load_suite2p,
    recording_format,
)
from ._labels import SPIKEFINDER_INDICATORS
from ._simulate import INDICATORS, estimate_decay_time, make_calcium, render_calcium
from ._spikefinder import load_spikefinder, write_spikefinder
from ._weights import dataset_weights
from ._windows import make_windows
from ._writers import RatesNpyWriter, write_rates, write_rates_npy, write_rates_nwb

__all__ = [
    "dataset_weights",
    "concat_bunches",
    "detect_layout",
    "load_folder",
    "read_calcium_csv",
    "read_traces_csv",
    "write_rates_csv",
    "load_caiman",
    "load_npy",
    "load_nwb",
    "load_recording",
    "load_suite2p",
    "recording_format",
    "RatesNpyWriter",
    "write_rates",
    "write_rates_npy",
    "write_rates_nwb",
    "INDICATORS",
    "SPIKEFINDER_INDICATORS",
    "bin_spike_times",
    "estimate_decay_time",
    "load_cascade",
    "load_spikefinder",
    "make_calcium",
    "make_windows",
    "render_calcium",
    "rebin_counts",
    "resample_calcium",
    "resample_traces",
    "write_spikefinder",
]
