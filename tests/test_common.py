"""scikit-learn's estimator checks on every estimator of the package (tiny settings).

The window models are ordinary sklearn estimators on ``(n_windows, window)``
arrays. The trace-level estimators follow the package's trace convention (see
:mod:`calgan_sklearn.base`): ``y`` holds spike counts of ``X``'s shape, NaN is
padding at the end of a trace, and a 1-D ``X`` is one trace. sklearn's checks
feed one target per row and NaN anywhere, so every check that fits them is an
expected failure, listed with its reason and skipped; the checks of parameters,
cloning, tags and errors before fitting must pass. The checks that train the
window models take minutes and are marked ``slow``.
"""

import numpy as np
import pytest
from _presets import CHECKS_DEEP, CHECKS_NET
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import estimator_checks_generator

from calgan_sklearn.baselines import OASIS, DerivativeDetector, WienerDeconvolution
from calgan_sklearn.models import (
    CalciumAutoencoder,
    CalciumGAN,
    DeepSpikeInference,
    SlidingWindowInference,
    SpikeClassifier,
)

WINDOW_ESTIMATORS = [
    SpikeClassifier(**CHECKS_NET),
    CalciumAutoencoder(latent_dim=2, **CHECKS_NET),
    CalciumGAN(latent_dim=2, **CHECKS_NET),
]
WINDOW_TYPES = tuple(type(est) for est in WINDOW_ESTIMATORS)
TRACE_ESTIMATORS = [
    DeepSpikeInference(**CHECKS_DEEP),
    SlidingWindowInference(LogisticRegression(), window=4, max_windows=200, random_state=0),
    OASIS(),
    WienerDeconvolution(),
    DerivativeDetector(),
]

# -- why checks fail -------------------------------------------------------------
_ACCURACY = (
    "one epoch of a two-filter network is far below the accuracy sklearn's check demands; "
    "learning is tested in test_classifier.py"
)
_Y_SHAPE = (
    "y holds spike counts of X's shape (n_traces, n_frames); the check passes one target per "
    "row, which fit refuses"
)
_NAN_INSIDE = (
    "NaN is accepted only as padding at the end of a trace (allow_nan=True for that); the check "
    "puts NaN inside traces, which fit refuses"
)
_EMPTY_MESSAGE = (
    "the error says 'calcium is empty (shape (12, 0)); at least one frame is needed', in the "
    "package's words for traces rather than sklearn's '0 feature(s)'"
)
_FLOAT32 = (
    "float32 networks: a row's output can change in its last bit with where it falls in a "
    "batch (6e-8 seen on an AVX2-only CPU, whose matrix kernels treat the last rows of a "
    "batch apart), beyond the check's float64 tolerance; tested to float32 precision in "
    "test_window_methods_do_not_depend_on_sample_order_or_batches"
)
_ONE_D = "a 1-D X is one trace (the trace convention), so fit accepts it instead of raising"
_SHORT = (
    "the check's traces are shorter than the {} frames per trace the method needs; fit says so"
)
_FIT_CHECKS = [
    "check_complex_data",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_overwrite_params",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
]
_SAMPLE_WEIGHT_CHECKS = [  # DeepSpikeInference.fit takes one sample_weight per trace
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weights_list",
    "check_sample_weights_not_an_array",
    "check_sample_weights_not_overwritten",
    "check_sample_weights_pandas_series",
    "check_sample_weights_shape",
]


def _trace_failures(min_frames=2, sample_weight=False):
    """Expected failures of a trace-level estimator: {check name: reason}."""
    failures = dict.fromkeys(_FIT_CHECKS, _Y_SHAPE)
    if sample_weight:
        failures.update(dict.fromkeys(_SAMPLE_WEIGHT_CHECKS, _Y_SHAPE))
    # traces shorter than the method needs are refused before y is looked at
    if min_frames > 5:  # the checks' traces have 1-5 frames
        too_short = _FIT_CHECKS
    elif min_frames > 1:
        too_short = ["check_complex_data", "check_fit2d_1feature"]  # one frame each
    else:
        too_short = []
    failures.update(dict.fromkeys(too_short, _SHORT.format(min_frames)))
    failures.update(
        {
            "check_estimators_pickle": _NAN_INSIDE,
            "check_estimators_empty_data_messages": _EMPTY_MESSAGE,
            "check_fit1d": _ONE_D,
            "check_fit2d_1sample": _Y_SHAPE,
        }
    )
    return failures


_ORDER_CHECKS = ["check_methods_sample_order_invariance", "check_methods_subset_invariance"]
EXPECTED_FAILURES = {
    "SpikeClassifier": {
        "check_classifiers_train": _ACCURACY,
        "check_class_weight_classifiers": _ACCURACY,
        **dict.fromkeys(_ORDER_CHECKS, _FLOAT32),
    },
    "CalciumAutoencoder": dict.fromkeys(_ORDER_CHECKS, _FLOAT32),
    "CalciumGAN": {},  # no deterministic output method: sample() draws
    "DeepSpikeInference": _trace_failures(sample_weight=True),
    "SlidingWindowInference": _trace_failures(min_frames=1),
    "OASIS": _trace_failures(min_frames=8),
    "WienerDeconvolution": _trace_failures(),
    "DerivativeDetector": _trace_failures(),
}

# Checks that never train a network (parameters, cloning, tags, errors raised
# before training): they stay in the quick loop; the other checks of the window
# models train dozens of networks (minutes on two cores) and are marked slow.
NO_TRAINING_CHECKS = {
    "check_classifiers_one_label",
    "check_classifiers_one_label_sample_weights",
    "check_classifiers_regression_target",
    "check_complex_data",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_estimator_sparse_tag",
    "check_estimator_tags_renamed",
    "check_estimators_empty_data_messages",
    "check_estimators_unfitted",
    "check_fit1d",
    "check_fit2d_1sample",
    "check_get_params_invariance",
    "check_mixin_order",
    "check_no_attributes_set_in_init",
    "check_non_transformer_estimators_n_iter",
    "check_parameters_default_constructible",
    "check_requires_y_none",
    "check_supervised_y_no_nan",
    "check_transformer_n_iter",
    "check_transformers_unfitted",
    "check_valid_tag_types",
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILURES[type(estimator).__name__]


def _check_name(check):
    return getattr(check, "__wrapped__", check).func.__name__  # a skipped check is wrapped


def _check_id(estimator, check):
    options = getattr(check, "__wrapped__", check).keywords
    options = ",".join(f"{key}={value}" for key, value in options.items())
    return f"{type(estimator).__name__}-{_check_name(check)}" + (f"({options})" if options else "")


def _check_params(estimators):
    """sklearn's checks as pytest params: expected failures skipped, training checks slow.

    Expected failures are skipped with their reason rather than run as xfail:
    pytest would format a long traceback for each (half a minute in all).
    """
    for estimator in estimators:
        expected = expected_failed_checks(estimator)
        for est, check in estimator_checks_generator(
            estimator, expected_failed_checks=expected, mark="skip"
        ):
            trains = isinstance(est, WINDOW_TYPES) and _check_name(check) not in NO_TRAINING_CHECKS
            marks = [pytest.mark.slow] if trains else []
            yield pytest.param(est, check, marks=marks, id=_check_id(est, check))


@pytest.mark.parametrize(
    "estimator, check", list(_check_params(WINDOW_ESTIMATORS + TRACE_ESTIMATORS))
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator", WINDOW_ESTIMATORS[:2], ids=lambda est: type(est).__name__
)  # SpikeClassifier and CalciumAutoencoder; CalciumGAN's sample() draws
def test_window_methods_do_not_depend_on_sample_order_or_batches(estimator):
    """sklearn's two invariance checks, to float32 precision (see ``_FLOAT32``): every
    output method gives each row the same values, to 1e-5 of the outputs' scale, whatever
    the rows' order and whether they come all at once or in batches of three."""
    rng = np.random.default_rng(0)
    X = 3 * rng.uniform(size=(20, 3))  # as sklearn's checks
    y = X[:, 0].astype(np.int64)
    est = clone(estimator).set_params(random_state=1).fit(X, y)
    order = rng.permutation(len(X))
    methods = ["predict", "transform", "decision_function", "score_samples", "predict_proba"]
    for method in [m for m in methods if hasattr(est, m)]:
        full = np.asarray(getattr(est, method)(X))
        permuted = np.asarray(getattr(est, method)(X[order]))
        batched = np.concatenate([getattr(est, method)(X[i : i + 3]) for i in range(0, 20, 3)])
        atol = 1e-5 * max(float(np.max(np.abs(full))), 1.0)
        np.testing.assert_allclose(permuted, full[order], rtol=1e-5, atol=atol, err_msg=method)
        np.testing.assert_allclose(batched, full, rtol=1e-5, atol=atol, err_msg=method)


@pytest.mark.parametrize("estimator", WINDOW_ESTIMATORS + TRACE_ESTIMATORS, ids=repr)
def test_expected_failures_name_real_checks(estimator):
    """A renamed or removed check in EXPECTED_FAILURES would silently test nothing."""
    names = {_check_name(check) for _, check in estimator_checks_generator(estimator)}
    unknown = set(expected_failed_checks(estimator)) - names
    assert not unknown, f"not among sklearn's checks for {estimator!r}: {sorted(unknown)}"
