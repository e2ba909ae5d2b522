"""scikit-learn's own estimator checks on RNNSegmenter.

sklearn's checks feed flat tabular data: ``X`` of shape (n_samples, n_features) with a 1-D
``y``. A segmenter learns from batches of images ``(n, H, W[, C])`` with one label per pixel
``(n, H, W)``, which no generic check produces, so every check that needs a successful ``fit``
is expected to fail: RNNSegmenter rejects that data with a ValueError naming the shapes it
expects. The API checks that need no fit (parameters, cloning, repr, tags, unfitted errors,
sparse / complex / empty input messages, ``y=None``) run and pass. The behaviour each failing
check protects is tested on image data in tests/test_segmenter.py, named below.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import RNNSegmenter

ESTIMATORS = [
    RNNSegmenter(hidden_size=8, head=(8,), max_epochs=2, batch_size=16, n_threads=1, random_state=0)
]

TABULAR = (
    "fits on tabular X (n_samples, n_features) with a 1-D y; RNNSegmenter takes images "
    "(n, H, W[, C]) with label masks (n, H, W) and rejects tabular data with a ValueError"
)


def _tabular(covered_by: str | None = None) -> str:
    return TABULAR + (f" ({covered_by} covers this on images)" if covered_by else "")


# Checks RNNSegmenter is expected to fail, by name, with the reason.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "RNNSegmenter": {
        "check_fit_score_takes_y": _tabular("test_score_is_mean_iou"),
        "check_estimators_overwrite_params": _tabular(
            "test_same_random_state_gives_identical_predictions"
        ),
        "check_dont_overwrite_parameters": _tabular(),
        "check_estimators_fit_returns_self": _tabular(
            "test_predict_returns_masks_of_fitted_labels"
        ),
        "check_readonly_memmap_input": _tabular(),
        "check_n_features_in_after_fitting": _tabular("test_fitted_attributes"),
        "check_positive_only_tag_during_fit": _tabular(),
        "check_estimators_dtypes": _tabular("test_color_and_uint8_images"),
        "check_sample_weights_not_an_array": _tabular("test_sample_weight_is_accepted"),
        "check_sample_weights_list": _tabular("test_sample_weight_is_accepted"),
        "check_all_zero_sample_weights_error": _tabular(),
        "check_sample_weights_shape": _tabular(),
        "check_sample_weights_not_overwritten": _tabular(),
        "check_sample_weight_equivalence_on_dense_data": _tabular()
        + "; besides, mini-batch training makes a weight of 2 differ from a repeated sample",
        "check_dtype_object": _tabular(),
        "check_pipeline_consistency": _tabular(),
        "check_estimators_nan_inf": _tabular("test_bad_fit_input_is_a_clear_value_error"),
        "check_estimators_pickle": _tabular("test_pickle_round_trip_keeps_predictions"),
        "check_estimators_pickle(readonly_memmap=True)": _tabular(
            "test_pickle_round_trip_keeps_predictions"
        ),
        "check_f_contiguous_array_estimator": _tabular(),
        "check_methods_sample_order_invariance": _tabular(),
        "check_methods_subset_invariance": _tabular(),
        "check_fit2d_1sample": _tabular(),
        "check_fit2d_1feature": _tabular(),
        "check_dict_unchanged": _tabular(),
        "check_fit_idempotent": _tabular("test_same_random_state_gives_identical_predictions"),
        "check_fit_check_is_fitted": _tabular("test_predict_before_fit_is_not_fitted_error"),
        "check_n_features_in": _tabular("test_fitted_attributes"),
        "check_fit2d_predict1d": _tabular(),
    },
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
