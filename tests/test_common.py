"""scikit-learn's own estimator checks on every skrnn estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import ImageToSequence, RNNImageClassifier, RNNImageRegressor

# Small networks keep the checks fast; the checks themselves are sklearn's, unchanged.
ESTIMATORS = [
    ImageToSequence(),
    RNNImageClassifier(hidden_size=16, max_epochs=15, batch_size=16, lr=1e-2, random_state=0),
    RNNImageRegressor(hidden_size=32, max_epochs=20, batch_size=16, lr=1e-2, random_state=0),
]

# Checks an estimator is expected to fail, by name, with the reason.
MINIBATCH_WEIGHTS = (
    "training is stochastic mini-batch descent: repeating a sample changes the batches and "
    "the number of steps, so a weight of 2 and a repeated sample train differently (the loss "
    "itself weights samples exactly; see tests/test_classifier.py)"
)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "RNNImageClassifier": {"check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS},
    "RNNImageRegressor": {
        "check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS,
        "check_methods_subset_invariance": (
            "the network computes in float32, whose matrix kernels round differently for a "
            "batch of one and a batch of many: predictions agree to about 2e-7, not the 1e-7 "
            "the check asks (tests/test_properties.py checks batch-size invariance at float32 "
            "precision)"
        ),
    },
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
