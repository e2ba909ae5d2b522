"""scikit-learn's own estimator checks on every skrnn estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import (
    ImageToSequence,
    RNNImageClassifier,
    RNNImageRegressor,
    RNNSequenceRecognizer,
)

# Small networks keep the checks fast; the checks themselves are sklearn's, unchanged.
ESTIMATORS = [
    ImageToSequence(),
    RNNImageClassifier(hidden_size=16, max_epochs=15, batch_size=16, lr=1e-2, random_state=0),
    RNNImageRegressor(hidden_size=32, max_epochs=20, batch_size=16, lr=1e-2, random_state=0),
    RNNSequenceRecognizer(
        hidden_size=8, conv=(4,), max_epochs=2, batch_size=16, n_threads=1, random_state=0
    ),
]

# Checks an estimator is expected to fail, by name, with the reason.
MINIBATCH_WEIGHTS = (
    "training is stochastic mini-batch descent: repeating a sample changes the batches and "
    "the number of steps, so a weight of 2 and a repeated sample train differently (the loss "
    "itself weights samples exactly; see tests/test_classifier.py)"
)
# sklearn compares predictions with assert_allclose, which is made for numbers; a recogniser
# predicts sequences (each 1-D label of these checks reads as a sequence of one, predicted as
# a tuple). tests/test_recognizer.py checks the same properties on what it reads.
SEQUENCES_PREDICTED = (
    "predictions are sequences (tuples of labels), which the check compares with "
    "assert_allclose, made for numbers (tests/test_recognizer.py checks this property with "
    "exact comparisons)"
)
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "RNNImageClassifier": {"check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS},
    "RNNImageRegressor": {
        "check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS,
    },
}


EXPECTED_FAILED_CHECKS["RNNSequenceRecognizer"] = {
    "check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS,
    "check_estimators_pickle": SEQUENCES_PREDICTED,
    "check_methods_sample_order_invariance": SEQUENCES_PREDICTED,
    "check_methods_subset_invariance": SEQUENCES_PREDICTED,
    "check_fit_idempotent": SEQUENCES_PREDICTED,
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
