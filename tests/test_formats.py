"""Readers and writers of suite2p, CaImAn, NWB and .npy files, on files real libraries write."""

import hashlib
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from calgan_sklearn.datasets import (
    load_caiman,
    load_npy,
    load_nwb,
    load_recording,
    load_suite2p,
    write_rates,
    write_rates_npy,
    write_rates_nwb,
)
from calgan_sklearn.signal import rolling_baseline

h5py = pytest.importorskip("h5py")
pynwb = pytest.importorskip("pynwb")

N_ROIS, N_FRAMES, FS = 4, 600, 30.0


def _traces(seed=0, n=N_ROIS, t=N_FRAMES):
    rng = np.random.default_rng(seed)
    return (200 + 20 * rng.random((n, 1)) + rng.normal(0, 2, (n, t))).astype(np.float32)


def make_suite2p(root, fs=FS):
    """A suite2p plane folder as suite2p saves it (np.save of arrays and the ops dict)."""
    plane = Path(root) / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    F, Fneu = _traces(0), _traces(1) * 0.5
    iscell = np.array([[1.0, 0.95], [0.0, 0.1], [1.0, 0.7], [0.0, 0.4]])
    np.save(plane / "F.npy", F)
    np.save(plane / "Fneu.npy", Fneu)
    np.save(plane / "iscell.npy", iscell)
    np.save(plane / "ops.npy", {"fs": fs, "nplanes": 1, "tau": 1.0}, allow_pickle=True)
    return plane, F, Fneu


def make_caiman(file, with_dff=True):
    """CaImAn's CNMF.save layout: estimates/*, params/data/fr, None saved as 'NoneType'."""
    C, YrA = _traces(2) - 200, _traces(3) - 200
    with h5py.File(file, "w") as f:
        f["estimates/C"] = C
        f["estimates/YrA"] = YrA
        f["estimates/S"] = np.zeros_like(C)
        f["estimates/F_dff"] = C / 100 if with_dff else "NoneType"
        f["estimates/idx_components"] = np.array([0, 3])
        f["estimates/idx_components_bad"] = np.array([1, 2])
        f["params/data/fr"] = 15.0
        f["params/data/dims"] = np.array([64, 64])
        f["params/data/fnames"] = "NoneType"
        f["dims"] = np.array([64, 64])
    return C, YrA


def make_nwb(file, *, dff=False, timestamps=False, two_series=False):
    """An NWB file written by pynwb: plane segmentation + Fluorescence/DfOverF series."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    nwb = NWBFile("test", "id0", datetime(2024, 1, 1, tzinfo=timezone.utc))
    device = nwb.create_device("microscope")
    channel = OpticalChannel(name="green", description="green", emission_lambda=520.0)
    plane = nwb.create_imaging_plane(
        name="plane",
        optical_channel=channel,
        description="plane",
        device=device,
        excitation_lambda=920.0,
        imaging_rate=FS,
        indicator="GCaMP6s",
        location="V1",
    )
    seg = ImageSegmentation().create_plane_segmentation("cells", plane, "rois")
    for i in range(N_ROIS):
        mask = np.zeros((8, 8))
        mask[i, i] = 1
        seg.add_roi(image_mask=mask, id=10 + i)
    module = nwb.create_processing_module("ophys", "optical physiology")
    module.add(seg.parent)
    region = seg.create_roi_table_region("all", region=list(range(N_ROIS)))
    traces = _traces(4)
    timing = {"timestamps": np.arange(N_FRAMES) / FS} if timestamps else {"rate": FS}
    container = (DfOverF if dff else Fluorescence)(name="DfOverF" if dff else "Fluorescence")
    module.add(container)
    container.create_roi_response_series(
        name="RoiResponseSeries", data=traces.T, rois=region, unit="a.u.", **timing
    )
    if two_series:
        container.create_roi_response_series(
            name="Neuropil", data=traces.T / 2, rois=region, unit="a.u.", rate=FS
        )
    with NWBHDF5IO(str(file), "w") as io:
        io.write(nwb)
    return traces


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- suite2p ---------------------------------------------------------------------
def test_suite2p_neuropil_and_dff_by_hand(tmp_path):
    plane, F, Fneu = make_suite2p(tmp_path)
    data = load_suite2p(tmp_path, neuropil_coef=0.7, baseline_percentile=8, baseline_window=10)
    assert data.calcium.dtype == np.float32 and data.calcium.shape == (2, N_FRAMES)
    assert data.fs == FS and list(data.roi) == [0, 2] and list(data.neuron) == ["0", "2"]
    assert data.n_rois == N_ROIS and set(data.units) == {"dff"} and data.spikes is None
    for row, i in zip(data.calcium, (0, 2)):
        fc = F[i].astype(np.float32) - np.float32(0.7) * Fneu[i]
        f0 = rolling_baseline(fc.astype(np.float64), 10, 8, fs=FS)
        np.testing.assert_allclose(row, (fc - f0) / f0, rtol=1e-4, atol=1e-5)
    raw = load_suite2p(plane, neuropil_coef=0.5, dff=False, cells_only=False)
    np.testing.assert_allclose(raw.calcium, F - np.float32(0.5) * Fneu, rtol=1e-6)
    assert raw.calcium.shape == (N_ROIS, N_FRAMES) and set(raw.units) == {"arbitrary"}
    # chunks of ROIs give the same rows as one read
    part = load_suite2p(plane, neuropil_coef=0.5, dff=False, cells_only=False, rois=[3, 1])
    np.testing.assert_array_equal(part.calcium, raw.calcium[[1, 3]])
    assert list(load_recording(tmp_path).default_rois) == [0, 2]


def test_suite2p_clear_errors(tmp_path):
    plane, F, _ = make_suite2p(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no F.npy"):
        load_suite2p(tmp_path / "empty")
    np.save(plane / "Fneu.npy", np.zeros((3, N_FRAMES)))
    with pytest.raises(ValueError, match="Fneu.npy has shape"):
        load_suite2p(plane)
    np.save(plane / "Fneu.npy", np.zeros_like(F))
    (plane / "ops.npy").unlink()
    with pytest.raises(ValueError, match="frame rate"):
        load_suite2p(plane)
    np.save(plane / "ops.npy", {"fs": 0.0}, allow_pickle=True)
    with pytest.raises(ValueError, match="positive"):
        load_suite2p(plane)
    np.save(plane / "ops.npy", {"fs": FS}, allow_pickle=True)
    np.save(plane / "F.npy", F[0])
    with pytest.raises(ValueError, match="shape"):
        load_suite2p(plane)
    np.save(plane / "F.npy", np.full_like(F, np.nan))
    with pytest.raises(ValueError, match="all NaN"):
        load_suite2p(plane)
    np.save(plane / "iscell.npy", np.zeros((N_ROIS, 2)))
    with pytest.raises(ValueError, match="no ROI"):
        load_suite2p(plane)


def test_suite2p_negative_baseline_is_nan_with_a_warning(tmp_path):
    plane, F, _ = make_suite2p(tmp_path)
    np.save(plane / "Fneu.npy", F * 2)  # F - 0.7 * 2F < 0
    with (
        pytest.warns(UserWarning, match="baseline at or below zero"),
        pytest.raises(ValueError, match="all NaN"),
    ):
        load_suite2p(plane)


# -- CaImAn ----------------------------------------------------------------------
def test_caiman_dff_and_c_plus_residuals(tmp_path):
    C, YrA = make_caiman(tmp_path / "dff.hdf5")
    data = load_caiman(tmp_path / "dff.hdf5")
    assert data.fs == 15.0 and list(data.roi) == [0, 3] and set(data.units) == {"dff"}
    np.testing.assert_allclose(data.calcium, C[[0, 3]] / 100, rtol=1e-6)
    make_caiman(tmp_path / "c.hdf5", with_dff=False)
    data = load_caiman(tmp_path / "c.hdf5", accepted_only=False)
    assert data.calcium.shape == (N_ROIS, N_FRAMES) and set(data.units) == {"arbitrary"}
    np.testing.assert_allclose(data.calcium, C + YrA, rtol=1e-6)
    with h5py.File(tmp_path / "nofs.hdf5", "w") as f:
        f["estimates/C"] = C
    with pytest.raises(ValueError, match="frame rate"):
        load_caiman(tmp_path / "nofs.hdf5")
    with h5py.File(tmp_path / "other.hdf5", "w") as f:
        f["data"] = C
    with pytest.raises(ValueError, match="not a file saved by CaImAn"):
        load_caiman(tmp_path / "other.hdf5")


# -- NWB -------------------------------------------------------------------------
@pytest.mark.parametrize("dff", [False, True])
def test_nwb_round_trip(tmp_path, dff):
    traces = make_nwb(tmp_path / "rec.nwb", dff=dff, timestamps=dff)
    data = load_nwb(tmp_path / "rec.nwb")
    np.testing.assert_allclose(data.calcium, traces)
    assert data.fs == pytest.approx(FS) and list(data.neuron) == ["10", "11", "12", "13"]
    assert set(data.units) == {"dff" if dff else "arbitrary"}


def test_nwb_several_series_are_named(tmp_path):
    traces = make_nwb(tmp_path / "rec.nwb", two_series=True)
    with pytest.raises(ValueError, match=r"several RoiResponseSeries \['Neuropil'"):
        load_nwb(tmp_path / "rec.nwb")
    np.testing.assert_allclose(
        load_nwb(tmp_path / "rec.nwb", series="Neuropil").calcium, traces / 2, rtol=1e-6
    )
    with pytest.raises(ValueError, match="no RoiResponseSeries named 'x'"):
        load_nwb(tmp_path / "rec.nwb", series="x")


def test_nwb_writer_copies_and_links_the_rois(tmp_path):
    source = tmp_path / "rec.nwb"
    make_nwb(source)
    before = _digest(source)
    data = load_nwb(source, rois=[1, 3])
    rates = np.abs(data.calcium) / 1000
    out = write_rates(rates, data, tmp_path / "out.nwb")
    assert _digest(source) == before
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        new = nwb.processing["ophys"]["inferred_spike_rates"]
        old = nwb.processing["ophys"]["Fluorescence"]["RoiResponseSeries"]
        np.testing.assert_allclose(new.data[:].T, rates, rtol=1e-6)
        assert new.rate == old.rate and new.rois.table is old.rois.table
        assert list(new.rois.data[:]) == [1, 3]
        assert list(new.rois.table.id[:][new.rois.data[:]]) == [11, 13]
    with pytest.raises(FileExistsError, match="already exists"):
        write_rates(rates, data, out)
    write_rates(rates * 2, data, out, overwrite=True)
    with NWBHDF5IO(str(out), "r") as io:
        np.testing.assert_allclose(
            io.read().processing["ophys"]["inferred_spike_rates"].data[:].T,
            rates * 2,
            rtol=1e-6,
        )
    with pytest.raises(ValueError, match="is the input file"):
        write_rates_nwb(rates, source, source, rois=[1, 3], overwrite=True)
    assert _digest(source) == before
    assert not list(tmp_path.glob(".*partial"))


def test_nwb_writer_with_timestamps_links_them(tmp_path):
    make_nwb(tmp_path / "rec.nwb", timestamps=True)
    data = load_nwb(tmp_path / "rec.nwb")
    out = write_rates_nwb(data.calcium, tmp_path / "rec.nwb", tmp_path / "out.nwb")
    again = load_nwb(out, series="inferred_spike_rates")
    np.testing.assert_allclose(again.calcium, data.calcium)
    assert again.fs == pytest.approx(FS)


# -- npy and the dispatch --------------------------------------------------------
def test_npy_reader_and_writer_keep_the_input_shape(tmp_path):
    plane, F, _ = make_suite2p(tmp_path)
    data = load_suite2p(plane)
    out = write_rates(data.calcium, data, tmp_path / "rates.npy")
    rates = np.load(out)
    assert rates.shape == F.shape and rates.dtype == np.float32
    np.testing.assert_array_equal(rates[[0, 2]], data.calcium)
    assert np.isnan(rates[[1, 3]]).all()
    with pytest.raises(FileExistsError):
        write_rates_npy(data.calcium, out)
    back = load_npy(out, fs=FS, rois=[0, 2])
    np.testing.assert_array_equal(back.calcium, data.calcium)
    with pytest.raises(ValueError, match="--fs"):
        load_recording(out)
    np.save(tmp_path / "one.npy", np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        load_npy(tmp_path / "one.npy", fs=FS)
    with pytest.raises(ValueError, match="does not exist"):
        load_npy(tmp_path / "none.npy", fs=FS)
    with pytest.raises(ValueError, match="NWB input"):
        write_rates(data.calcium, data, tmp_path / "x.nwb")
    with pytest.raises(ValueError, match="unknown output format"):
        write_rates(data.calcium, data, tmp_path / "x.txt")


def test_csv_writer_names_columns_by_roi(tmp_path):
    from calgan_sklearn.datasets import read_calcium_csv

    make_caiman(tmp_path / "r.hdf5")
    data = load_recording(tmp_path / "r.hdf5")
    write_rates(data.calcium, data, tmp_path / "r.csv")
    values, columns = read_calcium_csv(tmp_path / "r.csv")
    assert columns == ["0", "3"]
    np.testing.assert_allclose(values, data.calcium, rtol=1e-6)


def test_missing_optional_package_names_the_extra(monkeypatch):
    import builtins

    from calgan_sklearn.datasets import _formats

    real_import = builtins.__import__

    def no_pynwb(name, *args, **kwargs):
        if name == "pynwb":
            raise ImportError("No module named 'pynwb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pynwb)
    monkeypatch.setattr(_formats.importlib, "import_module", lambda m: no_pynwb(m))
    with pytest.raises(ImportError, match=re.escape('pip install "calgan_sklearn[nwb]"')):
        load_nwb("x.nwb")


def test_formats_page_code_runs(tmp_path, monkeypatch):
    """Every ``.. code-block:: python`` of docs/formats.rst runs, in order, in one namespace."""
    page = Path(__file__).resolve().parents[1] / "docs" / "formats.rst"
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", page.read_text())
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        for block in blocks:
            code = "\n".join(line[4:] for line in block.splitlines())
            exec(compile(code, str(page), "exec"), namespace)  # noqa: S102
