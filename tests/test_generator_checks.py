"""scikit-learn's own estimator checks on RNNImageGenerator, a density estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import RNNImageGenerator

# A small network keeps the checks fast; the checks themselves are sklearn's, unchanged.
ESTIMATORS = [
    RNNImageGenerator(
        hidden_size=8, embedding_dim=8, max_epochs=3, batch_size=16, n_threads=1, random_state=0
    ),
]

# Checks the generator is expected to fail, by name, with the reason.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
