"""CalciumGAN: conditioning, sampling, persistence, and that it learns."""

import json
import pickle

import numpy as np
import pytest
from _presets import TINY_GAN as TINY
from _presets import TINY_TRACE_GAN as TINY_TRACE
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from calgan_sklearn.datasets import make_calcium, make_windows, render_calcium
from calgan_sklearn.evaluation import two_sample_auc
from calgan_sklearn.models import CalciumGAN, SpikeClassifier, load
from calgan_sklearn.signal import noise_sd


@pytest.fixture(scope="module")
def spike_windows():
    data = make_calcium(
        n_neurons=6,
        duration=150.0,
        fs=30.0,
        indicator="GCaMP6f",
        firing_rate=2.0,
        noise_level=0.27,
        random_state=0,
    )
    X, S, _ = make_windows(data.calcium, data.spikes, window=32, stride=8, target="subwindow")
    idx = np.random.default_rng(0).permutation(len(X))[:800]
    return X[idx], S[idx]


@pytest.mark.parametrize(
    "conditioning",  # spike conditioning exercises the most; the others are slow-only
    [
        pytest.param(None, marks=pytest.mark.slow),
        pytest.param("label", marks=pytest.mark.slow),
        "spikes",
    ],
)
def test_fit_and_sample_each_conditioning(spike_windows, conditioning):
    X, S = spike_windows[0][:96], spike_windows[1][:96]
    y = {None: None, "label": np.where(S.sum(1) > 0, "spike", "quiet"), "spikes": S}[conditioning]
    gan = CalciumGAN(**TINY, random_state=0).fit(X, y)
    assert gan.conditioning_ == conditioning
    assert set(gan.history_) == {"d_loss", "g_loss", "gp", "w_dist"}
    Xs, ys = gan.sample(5, random_state=0)
    assert Xs.shape == (5, 32) and np.isfinite(Xs).all()
    assert (ys is None) == (conditioning is None)
    np.testing.assert_array_equal(Xs, gan.sample(5, random_state=0)[0])
    if conditioning is not None:
        Xs, ys = gan.sample(y=y[:7], random_state=0)
        assert Xs.shape == (7, 32)
        np.testing.assert_array_equal(ys, y[:7])
    # samples come back in data units, not normalised units
    assert abs(np.median(Xs) - np.median(X)) < 5 * X.std()
    assert gan.critic_score(X[:4], None if y is None else y[:4]).shape == (4,)


@pytest.mark.slow
def test_early_stopping_watches_the_validation_wasserstein_estimate(spike_windows):
    # Keras cannot tell by itself whether val_w_dist should fall or rise; the
    # fit used to fail with "isn't able to automatically determine" (fixed)
    X, S = spike_windows[0][:96], spike_windows[1][:96]
    params = {**TINY, "epochs": 3}
    gan = CalciumGAN(**params, validation_fraction=0.25, patience=1, random_state=0).fit(X, S)
    assert 1 <= gan.n_iter_ <= 3
    assert len(gan.history_["val_w_dist"]) == gan.n_iter_


@pytest.mark.slow
def test_sample_errors(spike_windows):
    X, S = spike_windows[0][:64], spike_windows[1][:64]
    gan = CalciumGAN(**TINY, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted without y"):
        gan.sample(2, y=np.ones(2))
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        gan.sample(0)
    cgan = CalciumGAN(**TINY, random_state=0).fit(X, S)
    with pytest.raises(ValueError, match=r"spike windows y have shape \(2, 16\)"):
        cgan.sample(y=np.zeros((2, 16)))
    with pytest.raises(ValueError, match="conditioning='spikes' but y now means None"):
        CalciumGAN(**TINY, warm_start=True, random_state=0).fit(X, S).fit(X)
    with pytest.raises(ValueError, match="must be non-negative"):
        CalciumGAN(**TINY).fit(X, -S)
    lgan = CalciumGAN(**TINY, random_state=0).fit(X, S.sum(1) > 0)
    with pytest.raises(ValueError, match="labels \\[7\\] not seen in fit.*fitted on"):
        lgan.sample(y=np.array([7]))
    lgan.set_params(warm_start=True)
    with pytest.raises(ValueError, match="labels \\[7\\] not seen in fit.*fitted on"):
        lgan.fit(X, np.full(len(X), 7))


@pytest.mark.slow
def test_persistence_and_determinism(spike_windows, tmp_path):
    X, S = spike_windows[0][:64], spike_windows[1][:64]
    gan = CalciumGAN(**TINY, random_state=0).fit(X, S)
    same = CalciumGAN(**TINY, random_state=0).fit(X, S)
    expected = gan.sample(y=S[:10], random_state=3)[0]
    np.testing.assert_array_equal(same.sample(y=S[:10], random_state=3)[0], expected)
    for restored in (pickle.loads(pickle.dumps(gan)), load(gan.save(tmp_path / "gan"))):
        np.testing.assert_array_equal(restored.sample(y=S[:10], random_state=3)[0], expected)
        restored.partial_fit(X, S)  # the training wrapper is rebuilt after loading
        assert restored.n_iter_ == 2


@pytest.mark.slow
def test_classifier_starts_from_gan_critic(spike_windows, tmp_path):
    X, S = spike_windows[0][:96], spike_windows[1][:96]
    y = (S[:, 14:18].sum(1) > 0).astype(int)
    gan = CalciumGAN(**TINY, random_state=0).fit(X, S)
    before = [w.copy() for w in gan.critic_.get_weights()]
    arch = {k: TINY[k] for k in ("filters", "kernel_size", "depth")}
    # with a negligible learning rate the fitted trunk is the critic's trunk
    clf = SpikeClassifier(**arch, epochs=1, learning_rate=1e-12, init=gan, random_state=0)
    clf.fit(X, y)
    np.testing.assert_allclose(
        clf.model_.get_layer("trunk_conv0").get_weights()[0],
        gan.critic_.get_layer("trunk_conv0").get_weights()[0][:, :1, :],
        atol=1e-6,
    )
    scratch = SpikeClassifier(**arch, epochs=1, learning_rate=1e-12, random_state=0).fit(X, y)
    assert not np.allclose(
        scratch.model_.get_layer("trunk_conv0").get_weights()[0],
        clf.model_.get_layer("trunk_conv0").get_weights()[0],
    )
    for a, b in zip(before, gan.critic_.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [k for k in vars(clf) if k.startswith("_")] == ["_seed"]  # no critic parked
    # from a saved GAN directory, and from an unfitted GAN (fitted on X first)
    path = gan.save(tmp_path / "gan")
    assert SpikeClassifier(**arch, epochs=1, init=str(path)).fit(X, y).n_iter_ == 1
    assert SpikeClassifier(**arch, epochs=1, init=CalciumGAN(**TINY)).fit(X, y).n_iter_ == 1
    with pytest.raises(ValueError, match=r"init's critic has \(filters, kernel_size, depth"):
        SpikeClassifier(filters=8, kernel_size=3, depth=1, init=gan).fit(X, y)


def _standardise(x):
    return (x - np.percentile(x, 20, axis=1)[:, None]) / noise_sd(x, axis=1, center=False)[:, None]


def _two_sample_auc(real, other):
    def features(x):
        z = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
        lags = [(z[:, :-k] * z[:, k:]).mean(1) for k in (1, 2, 4)]
        return np.c_[np.sort(z, 1), np.column_stack(lags), np.abs(np.diff(z, axis=1)).mean(1)]

    F = np.r_[features(real), features(other)]
    labels = np.r_[np.zeros(len(real)), np.ones(len(other))]
    clf = LogisticRegression(max_iter=2000)
    return cross_val_score(clf, F, labels, cv=5, scoring="roc_auc").mean()


@pytest.mark.slow
def test_gan_learns_realistic_spike_conditioned_windows(spike_windows):
    X, S = spike_windows
    gan = CalciumGAN(
        filters=8,
        latent_dim=8,
        depth=2,
        kernel_size=5,
        n_critic=1,
        epochs=60,
        batch_size=32,
        learning_rate=1e-3,
        random_state=0,
    ).fit(X[:600], S[:600])
    X_test, S_test = X[600:], S[600:]
    fake = gan.sample(y=S_test, random_state=1)[0]
    rng = np.random.default_rng(0)
    noise = X_test.mean(1, keepdims=True) + X_test.std(1, keepdims=True) * rng.standard_normal(
        X_test.shape
    )
    auc_gan, auc_noise = _two_sample_auc(X_test, fake), _two_sample_auc(X_test, noise)
    assert auc_noise > 0.95
    assert auc_gan < auc_noise - 0.1, (auc_gan, auc_noise)

    s = 8
    one_spike = np.zeros((300, 32))
    one_spike[:, s] = 1
    with_spike = _standardise(gan.sample(y=one_spike, random_state=0)[0]).mean(0)
    without = _standardise(gan.sample(y=np.zeros((300, 32)), random_state=0)[0]).mean(0)

    def response(m):  # peak after the spike above the level just before it
        return m[s + 1 : s + 9].max() - m[s - 3 : s].mean()

    assert response(with_spike) > response(without) + 1.0, (
        response(with_spike),
        response(without),
    )


@pytest.mark.slow
def test_folders_saved_with_the_old_names_still_load(spike_windows, tmp_path):
    # before the names were unified a GAN was saved with discriminator_.keras,
    # normalize="window" and the input scaling in offset_ / scale_
    X = spike_windows[0][:64]
    gan = CalciumGAN(**TINY, random_state=0).fit(X)
    path = gan.save(tmp_path / "gan")
    (path / "critic_.keras").rename(path / "discriminator_.keras")
    meta = json.loads((path / "estimator.json").read_text())
    meta["params"]["normalize"] = "window"
    for name in ("input_offset_", "input_scale_"):
        meta["state"][name.removeprefix("input_")] = meta["state"].pop(name)
    (path / "estimator.json").write_text(json.dumps(meta))
    old = load(path)
    assert old.normalize == "noise" and old.input_scale_ == gan.input_scale_
    np.testing.assert_array_equal(old.critic_score(X[:8]), gan.critic_score(X[:8]))


# --------------------------------------------------------------------------- #
# Trace mode: CalciumGAN(fs=...) on whole NaN-padded traces
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def traces():
    data = make_calcium(
        n_neurons=4,
        duration=40.0,
        fs=30.0,
        indicator="GCaMP6s",
        firing_rate=0.5,
        noise_level=1.0,
        random_state=0,
    )
    calcium, spikes = data.calcium.copy(), data.spikes.astype(float)
    for i, n in ((1, 900), (2, 1000)):  # traces of different lengths
        calcium[i, n:] = np.nan
        spikes[i, n:] = np.nan
    return calcium, spikes


@pytest.fixture(scope="module")
def trace_gan(traces):
    return CalciumGAN(**TINY_TRACE, random_state=0).fit(*traces)


def test_trace_mode_renders_spike_trains_with_their_shape_and_padding(traces, trace_gan):
    calcium, spikes = traces
    gan = trace_gan
    assert gan.conditioning_ == "trains" and gan.n_iter_ == 1
    # val_auc: the realism early stopping watches (monitor="auto" in trace mode)
    assert set(gan.history_) == {"d_loss", "g_loss", "gp", "w_dist", "val_auc"}
    rendered, y = gan.sample(y=spikes, random_state=0)
    assert rendered.shape == spikes.shape
    np.testing.assert_array_equal(np.isnan(rendered), np.isnan(spikes))
    np.testing.assert_array_equal(y, spikes)
    np.testing.assert_array_equal(rendered, gan.sample(y=spikes, random_state=0)[0])
    # any length, in data units (dF/F around the data's baseline)
    short = gan.sample(y=np.nan_to_num(spikes[:2, :75]), random_state=1)[0]
    assert short.shape == (2, 75) and np.isfinite(short).all()
    assert abs(np.nanmedian(rendered) - np.nanmedian(calcium)) < 3 * np.nanstd(calcium)
    assert clone(gan).get_params() == gan.get_params()
    assert gan.get_params()["fs"] == 30.0


def test_trace_mode_like_sets_the_noise_level(traces, trace_gan):
    spikes = np.nan_to_num(traces[1][:2])
    rng = np.random.default_rng(0)
    for sd in (0.05, 0.5):
        like = 3.0 + sd * rng.standard_normal((2, 2000))
        rendered = trace_gan.sample(y=spikes, like=like, random_state=0)[0]
        ratio = noise_sd(rendered) / sd
        assert np.all((ratio > 0.6) & (ratio < 1.6)), ratio
        # like's baseline is where the rendering sits
        moved = trace_gan.sample(y=spikes, like=like + 10.0, random_state=0)[0]
        np.testing.assert_allclose(moved - rendered, 10.0, atol=1e-6)


def _isolated_spike_response(gan, fs=30.0, n=40, random_state=0):
    """Mean rendered calcium 0.2-1.5 s after isolated spikes minus 0.5 s before,
    in units of the rendering's noise SD (spikes every 4 s)."""
    spikes = np.zeros((n, 1200))
    at = np.arange(90, 1200 - 60, 120)
    spikes[:, at] = 1
    rendered = gan.sample(y=spikes, random_state=random_state)[0]
    z = rendered / noise_sd(rendered)[:, None]
    after = np.mean([z[:, t + 6 : t + 45].mean(1) for t in at], axis=0)
    before = np.mean([z[:, t - 15 : t].mean(1) for t in at], axis=0)
    return float(np.mean(after - before))


def test_trace_mode_spikes_drive_transients(traces):
    # the same data with the spike trains shifted by half a trace against the
    # calcium: no transient follows a spike there, so the response must come
    # from what was learned, not from the architecture
    calcium, spikes = traces[0][[0, 3]], traces[1][[0, 3]]
    shuffled = np.roll(spikes, spikes.shape[1] // 2, axis=1)
    params = {**TINY_TRACE, "epochs": 3}
    learned = _isolated_spike_response(CalciumGAN(**params, random_state=0).fit(calcium, spikes))
    control = _isolated_spike_response(CalciumGAN(**params, random_state=0).fit(calcium, shuffled))
    assert learned > 2.0, (learned, control)
    assert abs(control) < learned / 3, (learned, control)


def _lag1(x):
    """Mean lag-1 autocorrelation of rows of ``x``."""
    z = x - x.mean(axis=1, keepdims=True)
    return float(np.mean((z[:, 1:] * z[:, :-1]).sum(1) / (z * z).sum(1)))


def test_trace_mode_residual_noise_carries_the_datas_noise_colour(traces):
    # slow (AR(1), lag-1 correlation 0.95) noise on the traces: rendered silence
    # has that colour when the generator draws real residual noise, and not with
    # white noise (one epoch: both still close to where they start)
    calcium, spikes = traces
    rng = np.random.default_rng(1)
    red = np.zeros(calcium.shape)
    for t in range(1, red.shape[1]):
        red[:, t] = 0.95 * red[:, t - 1] + rng.standard_normal(len(red))
    coloured = calcium + 0.3 * red * np.nanstd(calcium) / red.std()
    silence = np.zeros((8, 900))
    lag1 = {}
    for source in ("residual", "white"):
        gan = CalciumGAN(**TINY_TRACE, trace_noise=source, random_state=0).fit(coloured, spikes)
        lag1[source] = _lag1(gan.sample(y=silence, random_state=0)[0])
    assert lag1["residual"] > 0.6 and lag1["white"] < 0.3, lag1
    # the residuals are the traces' noise, not their spikes' transients
    assert gan.residual_bank_ is None
    gan = CalciumGAN(**TINY_TRACE, random_state=0).fit(calcium, spikes)
    base = np.nanpercentile(calcium, 10, axis=1, keepdims=True)
    z = (calcium - base) / noise_sd(calcium)[:, None]
    assert gan.residual_bank_.std() < 0.5 * np.nanstd(z), (gan.residual_bank_.std(), np.nanstd(z))
    assert gan.residual_starts_[-1] == len(gan.residual_bank_)
    assert len(gan.residual_style_) == len(gan.residual_starts_) - 1 == len(calcium)


def test_trace_mode_silence_has_no_transients(traces):
    # what a linear response misses around bursts (the simulator's indicator is
    # nonlinear) stays out of the residual noise: rendered silence has no
    # transients of it, only the traces' noise and drift
    calcium, spikes = traces
    gan = CalciumGAN(**TINY_TRACE, random_state=0).fit(calcium, spikes)
    rendered = gan.sample(y=np.zeros((8, 1200)), random_state=0)[0]
    z = rendered / noise_sd(rendered)[:, None]
    peak = np.max(z - np.median(z, axis=1, keepdims=True), axis=1)
    assert np.all(peak < 6.0), peak


def _neurons(seed, n_neurons=3, **params):
    """A minute of simulated neurons at 30 Hz firing at 0.5 Hz."""
    return make_calcium(
        n_neurons=n_neurons,
        duration=60.0,
        fs=30.0,
        firing_rate=0.5,
        random_state=seed,
        **params,
    )


def _tiny_gan_on(data):
    """A tiny trace-mode GAN fitted to the neurons of every ``_neurons`` result in ``data``."""
    X = np.vstack([d.calcium for d in data])
    y = np.vstack([d.spikes for d in data]).astype(float)
    return CalciumGAN(**TINY_TRACE, random_state=0).fit(X, y)


def test_trace_mode_like_sets_the_transient_size():
    # neurons of the same transients at noise levels 4x apart: in units of its
    # noise, a rendering in the style of a quiet neuron has transients about 4x
    # those of one in the style of a noisy neuron, read off the like trace's
    # spread with the firing rate of the spikes rendered
    gan = _tiny_gan_on([_neurons(seed, noise_level=nu) for nu, seed in ((1.0, 0), (4.0, 1))])
    train_spikes = np.zeros((3, 1800))
    train_spikes[:, 90:-60:120] = 1
    size = {}
    for nu, seed in ((1.0, 2), (4.0, 3)):
        like = _neurons(seed, noise_level=nu).calcium
        rendered = gan.sample(y=train_spikes, like=like, random_state=0)[0]
        z = rendered / noise_sd(rendered)[:, None]
        at = np.flatnonzero(train_spikes[0])
        size[nu] = np.mean([z[:, t + 6 : t + 45].mean() - z[:, t - 15 : t].mean() for t in at])
    assert size[1.0] > 2.5 * size[4.0] > 0, size


def test_trace_mode_keeps_the_most_realistic_weights(traces):
    # a learning rate that wrecks the generator: stopping on realism (the default
    # in trace mode) keeps the weights whose renderings a classifier tells from
    # the traces least well, here the starting ones, and stops early; without
    # it (w_dist, no validation part) the wreck is kept
    calcium, spikes = traces
    params = {**TINY_TRACE, "epochs": 8, "learning_rate": 0.5}
    kept = CalciumGAN(**params, patience=2, random_state=0).fit(calcium, spikes)
    wreck = CalciumGAN(**params, monitor="w_dist", random_state=0).fit(calcium, spikes)
    auc = kept.history_["val_auc"]
    assert len(auc) == kept.n_iter_ < params["epochs"]
    assert 0 <= kept.best_epoch_ <= kept.n_iter_ and kept.best_val_auc_ <= min(auc)
    assert "val_auc" not in wreck.history_ and wreck.n_iter_ == params["epochs"]

    def score(gan):
        rendered = gan.sample(y=spikes, like=calcium, random_state=1)[0]
        return two_sample_auc(calcium, rendered, 30.0, spikes=spikes)

    assert score(kept) < score(wreck) - 0.15, (score(kept), score(wreck))
    # partial_fit trains its epoch whatever the realism
    kept.partial_fit(calcium, spikes)
    assert kept.n_iter_ == len(auc) + 1 and len(kept.history_["val_auc"]) == len(auc)


def test_trace_mode_realism_monitor_bad_input(traces, spike_windows):
    calcium, spikes = traces
    with pytest.raises(ValueError, match="set fs"):
        CalciumGAN(**{**TINY, "monitor": "realism"}).fit(spike_windows[0])
    with pytest.raises(ValueError, match="needs at least 2 of them"):
        CalciumGAN(**TINY_TRACE, monitor="realism", validation_fraction=0.25).fit(calcium, spikes)
    with pytest.raises(ValueError, match="needs at least 2 traces; got 1"):
        CalciumGAN(**TINY_TRACE, monitor="realism").fit(calcium[:1], spikes[:1])
    with pytest.raises(ValueError, match="monitor"):
        CalciumGAN(**TINY_TRACE, monitor="auc").fit(calcium, spikes)
    with pytest.raises(ValueError, match="crops of at least 8 frames of two traces"):
        CalciumGAN(**TINY_TRACE, monitor="realism").fit(calcium[:, :6], spikes[:, :6])
    # one trace, or traces too short to score: "auto" trains every epoch
    for X, y in ((calcium[:1], spikes[:1]), (calcium[:, :6], spikes[:, :6])):
        gan = CalciumGAN(**{**TINY_TRACE, "epochs": 2}).fit(X, y)
        assert gan.n_iter_ == 2 and "val_auc" not in gan.history_


def _decay(gan, n=40):
    """Per rendered trace: its mean transient 0.8-1.5 s after isolated spikes
    over that 0-0.25 s after them."""
    y = np.zeros((n, 900))
    at = np.arange(60, 900 - 60, 90)
    y[:, at] = 1
    z = gan.sample(y=y, random_state=0)[0]
    z = z / noise_sd(z)[:, None]

    def mean(a, b):
        return np.mean([z[:, t + a : t + b].mean(1) - z[:, t - 10 : t].mean(1) for t in at], 0)

    return mean(25, 45) / mean(1, 8)


def test_trace_mode_neurons_keep_their_own_kinetics():
    # GCaMP6s and GCaMP6f neurons in one style: renderings of one spike train
    # decay fast in some traces and slowly in others (the neurons' own kernels),
    # several times more spread than renderings in the style of GCaMP6s alone
    def fit(*parts):
        return _tiny_gan_on(
            [_neurons(seed, 4, indicator=ind, noise_level=0.5) for ind, seed in parts]
        )

    mixed = fit(("GCaMP6s", 0), ("GCaMP6f", 1))
    single = fit(("GCaMP6s", 0), ("GCaMP6s", 2))
    assert mixed.n_kernels_ == 8  # every neuron's own kernel
    p_mixed, p_single = (np.percentile(_decay(g), [10, 90]) for g in (mixed, single))
    assert p_mixed[0] < p_single[0] - 0.1, (p_mixed, p_single)
    assert np.diff(p_mixed)[0] > 2 * np.diff(p_single)[0], (p_mixed, p_single)


def test_trace_mode_bursts_outgrow_single_spikes_as_the_indicator_does():
    # the simulator's GCaMP6s is a Hill curve (coefficient 2.9) of calcium: a
    # 4-spike burst's transient is 5.4x a single spike's, not 4x. The fitted
    # response curve is a power well above 1 and renders that ratio (a linear
    # kernel with a quadratic curve gave 4.0); OGB-1 (Hill coefficient 1) gets
    # a power near 1
    probe = np.zeros((40, 1800))
    probe[:, 60::480], probe[:, 300::480] = 1, 4

    def burst_over_single(calcium):
        z = calcium - np.median(calcium, axis=1, keepdims=True)

        def peak(count):
            at = np.flatnonzero(probe[0] == count)
            return np.mean([z[:, t : t + 30].max(1) - z[:, t - 15 : t].mean(1) for t in at])

        return peak(4) / peak(1)

    gans = {
        indicator: _tiny_gan_on(
            [_neurons(seed, 4, indicator=indicator, noise_level=0.5) for seed in (0, 1)]
        )
        for indicator in ("GCaMP6s", "OGB-1")
    }
    power = {k: gan.response_curve_[0, 1] for k, gan in gans.items()}
    assert gans["OGB-1"].curve_form_ == "power" and gans["OGB-1"].response_curve_.shape == (1, 3)
    assert power["GCaMP6s"] > power["OGB-1"] + 0.2 and power["OGB-1"] < 1.15, power
    true = burst_over_single(render_calcium(probe, 30.0, "GCaMP6s", amplitude=1.0))
    rendered = burst_over_single(gans["GCaMP6s"].sample(y=probe, random_state=0)[0])
    assert abs(np.log(rendered / true)) < np.log(1.15), (rendered, true)


def test_trace_mode_bad_input(traces, trace_gan):
    calcium, spikes = traces
    with pytest.raises(ValueError, match="fit needs spike counts y"):
        CalciumGAN(**TINY_TRACE).fit(calcium)
    with pytest.raises(ValueError, match="both must be"):
        CalciumGAN(**TINY_TRACE).fit(calcium, spikes[:, :-5])
    with pytest.raises(ValueError, match="trace 1 has 900 frames but spikes has 800"):
        bad = spikes.copy()
        bad[1, 800:] = np.nan
        CalciumGAN(**TINY_TRACE).fit(calcium, bad)
    nan_row = calcium.copy()
    nan_row[3] = np.nan
    with pytest.raises(ValueError, match=r"trace\(s\) \[3\] contain only NaN"):
        CalciumGAN(**TINY_TRACE).fit(nan_row, spikes)
    with pytest.raises(ValueError, match=r"use trace mode: CalciumGAN\(fs="):
        CalciumGAN(**{**TINY_TRACE, "fs": None}).fit(calcium, spikes)
    with pytest.raises(ValueError, match="fs"):
        CalciumGAN(**{**TINY_TRACE, "fs": -30.0}).fit(calcium, spikes)
    with pytest.raises(ValueError, match="shorter than the critic's crops"):
        # 35 s crops: of traces of 40 s and 30 s, one part gets only the short one
        CalciumGAN(**{**TINY_TRACE, "crop_seconds": 35.0}, validation_fraction=0.5).fit(
            calcium[:2], spikes[:2]
        )
    with pytest.raises(ValueError, match="call sample\\(y=spikes\\)"):
        trace_gan.sample(3)
    with pytest.raises(ValueError, match="like has 3 traces but y has 2"):
        trace_gan.sample(y=np.zeros((2, 50)), like=calcium[:3])
    with pytest.raises(ValueError, match="must be non-negative"):
        trace_gan.sample(y=-np.ones((2, 50)))
    with pytest.raises(ValueError, match="critic_score scores windows"):
        trace_gan.critic_score(calcium, spikes)


def test_trace_mode_persistence(traces, trace_gan, tmp_path):
    spikes = traces[1]
    expected = trace_gan.sample(y=spikes, random_state=3)[0]
    for restored in (pickle.loads(pickle.dumps(trace_gan)), load(trace_gan.save(tmp_path / "g"))):
        np.testing.assert_array_equal(restored.sample(y=spikes, random_state=3)[0], expected)
        assert restored.get_params() == trace_gan.get_params()
    restored.partial_fit(*traces)  # the training wrapper is rebuilt after loading
    assert restored.n_iter_ == 2


# --------------------------------------------------------------------------- #
# Trace mode with style labels: one GAN, several datasets
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def two_styles(traces):
    """The ``traces`` fixture's neurons as style "big", and the same spike trains
    with transients a fifth as large (same noise) as style "small"."""
    calcium, spikes = traces
    base = np.nanpercentile(calcium, 10, axis=1, keepdims=True)
    resid = calcium - base
    noise = resid - np.apply_along_axis(
        lambda r: np.convolve(np.nan_to_num(r), np.ones(9) / 9, mode="same"), 1, resid
    )
    small = base + 0.2 * (resid - noise) + noise
    X = np.vstack([calcium, small])
    return X, np.vstack([spikes, spikes]), np.array(["big"] * 4 + ["small"] * 4)


def test_trace_mode_style_labels_render_each_style(two_styles):
    X, y, style = two_styles
    gan = CalciumGAN(**{**TINY_TRACE, "epochs": 4}, random_state=0).fit(X, y, style=style)
    assert gan.styles_.tolist() == ["big", "small"]
    assert sorted(set(gan.residual_style_.tolist())) == [0, 1]  # residual noise of each style
    spikes = np.zeros((40, 1200))
    at = np.arange(90, 1200 - 60, 120)
    spikes[:, at] = 1
    # the same unlabelled traces set the scale: only the style label differs
    like = np.vstack([X[0]] * 40)
    sizes = {}
    for label in ("big", "small"):
        rendered = gan.sample(y=spikes, like=like, style=label, random_state=0)[0]
        z = rendered / noise_sd(rendered)[:, None]
        after = np.mean([z[:, t + 3 : t + 30].mean(1) for t in at])
        before = np.mean([z[:, t - 15 : t].mean(1) for t in at])
        sizes[label] = after - before
    assert sizes["big"] > 1.5 * sizes["small"], sizes
    # by label alone, scales are drawn from that style's training traces
    rendered = gan.sample(y=spikes[:4], style="small", random_state=1)[0]
    assert rendered.shape == (4, 1200) and np.isfinite(rendered).all()
    mixed = gan.sample(y=spikes[:2], style=["big", "small"], random_state=1)[0]
    assert mixed.shape == (2, 1200)
    # training on needs the labels again; a saved GAN keeps its styles
    gan.partial_fit(X, y, style=style)
    assert gan.n_iter_ == 5
    restored = pickle.loads(pickle.dumps(gan))
    assert restored.styles_.tolist() == ["big", "small"]
    np.testing.assert_allclose(  # equal up to float32 rounding of the rebuilt graph
        restored.sample(y=spikes[:2], style="big", random_state=2)[0],
        gan.sample(y=spikes[:2], style="big", random_state=2)[0],
        rtol=1e-5,
        atol=1e-6,
    )


def test_trace_mode_style_bad_input(two_styles, trace_gan):
    X, y, style = two_styles
    with pytest.raises(ValueError, match=r"one label per trace, shape \(8,\)"):
        CalciumGAN(**TINY_TRACE).fit(X, y, style=style[:5])
    with pytest.raises(ValueError, match="fits windows"):
        CalciumGAN(**TINY).fit(X[:, :64], np.nan_to_num(y[:, :64]), style=style)
    with pytest.raises(ValueError, match="fitted without style labels"):
        trace_gan.sample(y=y[:2], style="big")
    with pytest.raises(ValueError, match="fitted without style labels"):
        CalciumGAN(**TINY_TRACE, warm_start=True).fit(X, y).fit(X, y, style=style)
    gan = CalciumGAN(**TINY_TRACE, random_state=0).fit(X, y, style=style)
    with pytest.raises(ValueError, match=r"labels \['huge'\] not seen in fit"):
        gan.sample(y=y[:2], style="huge")
    with pytest.raises(ValueError, match="pass style= too"):
        gan.sample(y=y[:2], like=X[:2])
    with pytest.raises(ValueError, match=r"one label or one per spike train \(2\)"):
        gan.sample(y=y[:2], style=["big", "small", "big"])
    with pytest.raises(ValueError, match="pass style= .* when training it further"):
        gan.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"labels \['huge'\] not seen in fit"):
        gan.partial_fit(X, y, style=np.array(["huge"] * 8))
