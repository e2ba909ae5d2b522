"""scikit-learn's own estimator checks on RNNSegmenter.

sklearn's checks feed flat tabular data: ``X`` of shape (n_samples, n_features) with a 1-D
``y``. A segmenter learns from batches of images ``(n, H, W[, C])`` with one label per pixel
``(n, H, W)``, which no generic check produces, so every check that needs a successful ``fit``
is expected to fail: RNNSegmenter rejects that data with a ValueError naming the shapes it
expects. The API checks that need no fit (parameters, cloning, repr, tags, unfitted errors,
sparse / complex / empty input messages, ``y=None``) run and pass. The behaviour each failing
check protects is tested on image data by the tests of tests/test_segmenter.py named below.
"""

import ast
from pathlib import Path

from sklearn.utils.estimator_checks import parametrize_with_checks

from skrnn import RNNSegmenter

ESTIMATORS = [
    RNNSegmenter(hidden_size=8, head=(8,), max_epochs=2, batch_size=16, n_threads=1, random_state=0)
]

TABULAR = (
    "fits on tabular X (n_samples, n_features) with a 1-D y; RNNSegmenter takes images "
    "(n, H, W[, C]) with label masks (n, H, W) and rejects tabular data with a ValueError"
)

# The tests of tests/test_segmenter.py that protect, on images, what each failing check does.
COVERING_TESTS: dict[str, tuple[str, ...]] = {
    "check_fit_score_takes_y": (
        "test_fit_score_and_partial_fit_take_the_masks_as_y",
        "test_score_is_mean_iou",
    ),
    "check_estimators_overwrite_params": ("test_fit_leaves_the_parameters_as_given",),
    "check_dont_overwrite_parameters": ("test_fit_leaves_the_parameters_as_given",),
    "check_estimators_fit_returns_self": ("test_fit_and_partial_fit_return_the_segmenter",),
    "check_readonly_memmap_input": ("test_read_only_memory_mapped_images_and_masks",),
    "check_n_features_in_after_fitting": (
        "test_fitted_attributes",
        "test_a_different_channel_count_at_predict_time",
    ),
    "check_positive_only_tag_during_fit": ("test_negative_pixel_values_are_welcome",),
    "check_estimators_dtypes": (
        "test_images_of_every_numeric_dtype_fit_predict_and_score",
        "test_color_and_uint8_images",
    ),
    "check_sample_weights_pandas_series": (
        "test_weights_in_any_sequence_give_the_model_of_the_same_array",
    ),
    "check_sample_weights_not_an_array": (
        "test_weights_in_any_sequence_give_the_model_of_the_same_array",
    ),
    "check_sample_weights_list": ("test_weights_in_any_sequence_give_the_model_of_the_same_array",),
    "check_all_zero_sample_weights_error": ("test_all_zero_weights_are_a_clear_error",),
    "check_sample_weights_shape": ("test_weights_of_the_wrong_shape_are_a_clear_error",),
    "check_sample_weights_not_overwritten": ("test_fit_leaves_the_callers_weights_unchanged",),
    "check_sample_weight_equivalence_on_dense_data": (
        "test_the_masks_of_images_of_zero_weight_do_not_matter",
        "test_weights_decide_which_images_the_model_learns_from",
        "test_weights_of_one_give_the_model_fitted_without_weights",
    ),
    "check_dtype_object": ("test_images_of_object_dtype_are_read_as_numbers",),
    "check_pipeline_consistency": ("test_a_pipeline_gives_the_masks_of_its_steps",),
    "check_estimators_nan_inf": (
        "test_non_finite_images_are_a_clear_error_at_fit_and_predict",
        "test_bad_fit_input_is_a_clear_value_error",
    ),
    "check_estimators_pickle": ("test_pickle_round_trip_keeps_predictions",),
    "check_estimators_pickle(readonly_memmap=True)": (
        "test_read_only_memory_mapped_images_and_masks",
    ),
    "check_f_contiguous_array_estimator": ("test_fortran_ordered_images_give_the_same_model",),
    "check_methods_sample_order_invariance": (
        "test_each_images_masks_do_not_depend_on_the_other_images",
    ),
    "check_methods_subset_invariance": (
        "test_each_images_masks_do_not_depend_on_the_other_images",
    ),
    "check_fit2d_1sample": ("test_fit_needs_two_images_but_partial_fit_learns_from_one",),
    "check_fit2d_1feature": ("test_images_one_pixel_high_or_wide",),
    "check_dict_unchanged": ("test_predicting_and_scoring_leave_the_segmenter_unchanged",),
    "check_fit_idempotent": ("test_same_random_state_gives_identical_predictions",),
    "check_fit_check_is_fitted": ("test_predict_before_fit_is_not_fitted_error",),
    "check_n_features_in": (
        "test_fitted_attributes",
        "test_predict_before_fit_is_not_fitted_error",
    ),
    "check_fit2d_predict1d": ("test_one_image_without_the_batch_axis_is_a_clear_error",),
}

# Why some checks could not pass even on images.
FURTHER_REASONS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "; besides, mini-batch training makes a weight of 2 differ from a repeated sample and "
        "a weight of 0 from a removed one (the batches and the input standardisation still "
        "see it)"
    ),
}


def _reason(check: str) -> str:
    *others, last = COVERING_TESTS[check]
    names = f"{', '.join(others)} and {last} cover" if others else f"{last} covers"
    covered = f"{names} this on images"
    return f"{TABULAR} ({covered}){FURTHER_REASONS.get(check, '')}"


# Checks RNNSegmenter is expected to fail, by name, with the reason.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "RNNSegmenter": {check: _reason(check) for check in COVERING_TESTS},
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_every_expected_failure_names_tests_that_exist():
    source = Path(__file__).with_name("test_segmenter.py").read_text()
    defined = {
        node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)
    }
    named = {test for tests in COVERING_TESTS.values() for test in tests}
    assert all(COVERING_TESTS.values())
    assert named <= defined, sorted(named - defined)
