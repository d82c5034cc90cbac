"""scikit-learn's estimator checks on every window-level Keras estimator (tiny settings)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from calgan_sklearn.models import CalciumAutoencoder, CalciumGAN, SpikeClassifier

TINY = dict(filters=2, kernel_size=3, depth=1, epochs=1, batch_size=64, random_state=0)

ESTIMATORS = [
    SpikeClassifier(**TINY),
    CalciumAutoencoder(latent_dim=2, **TINY),
    CalciumGAN(latent_dim=2, **TINY),
]

_ACCURACY = (
    "one epoch of a two-filter network is far below the accuracy sklearn's check demands; "
    "learning is tested in test_classifier.py"
)
_EXPECTED = {
    "SpikeClassifier": {
        "check_classifiers_train": _ACCURACY,
        "check_class_weight_classifiers": _ACCURACY,
    },
    "CalciumAutoencoder": {},
    "CalciumGAN": {},
}


def expected_failed_checks(estimator):
    return _EXPECTED[type(estimator).__name__]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
