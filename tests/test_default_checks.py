"""scikit-learn's whole ``check_estimator`` on every estimator that takes tabular input, with
every parameter at its default (scikit-learn-contrib's convention), not the small networks of
test_common.py. About a minute each on two cores, so opt-in: ``pytest -m slow``."""

import pytest
from sklearn.utils.estimator_checks import check_estimator

from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSequenceRecognizer

MINIBATCH_WEIGHTS = (
    "stochastic mini-batch training: a weight of 2 and a repeated sample make different "
    "batches (see test_common.py)"
)
SEQUENCES = "predictions are sequences, which the check compares as numbers (see test_common.py)"

EXPECTED_FAILED_CHECKS = {
    "RNNImageClassifier": {"check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS},
    "RNNImageRegressor": {
        "check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS,
    },
    "RNNSequenceRecognizer": {
        "check_sample_weight_equivalence_on_dense_data": MINIBATCH_WEIGHTS,
        "check_estimators_pickle": SEQUENCES,
        "check_methods_sample_order_invariance": SEQUENCES,
        "check_methods_subset_invariance": SEQUENCES,
        "check_fit_idempotent": SEQUENCES,
    },
    "RNNImageGenerator": {},
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator_class",
    [RNNImageClassifier, RNNImageRegressor, RNNSequenceRecognizer, RNNImageGenerator],
    ids=lambda cls: cls.__name__,
)
def test_every_check_passes_with_the_defaults(estimator_class):
    check_estimator(
        estimator_class(random_state=0),
        expected_failed_checks=EXPECTED_FAILED_CHECKS[estimator_class.__name__],
    )
