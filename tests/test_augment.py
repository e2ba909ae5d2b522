"""``augment``: random flips, shifts, zooms and intensity changes of training batches only,
images and masks together, reproducible with ``random_state``."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skrnn import RNNImageClassifier, RNNImageRegressor, RNNSegmenter
from skrnn._augment import Augmenter, check_augment
from skrnn.datasets import load_digits_images, make_shapes

OFF = dict(hflip=False, vflip=False, shift=0.0, scale=0.0, intensity=0.0, mean=[0.0], std=[1.0])


def _batch(n=6, size=10, seed=0):
    rng = np.random.default_rng(seed)
    masks = torch.as_tensor(rng.integers(0, 4, size=(n, size, size)), dtype=torch.int16)
    images = masks[..., None].float() * 10.0  # each pixel's value names its label
    return images, masks


def test_flips_move_images_and_masks_together():
    torch.manual_seed(0)
    images, masks = _batch()
    flipped, flipped_masks = Augmenter(**{**OFF, "hflip": True, "vflip": True})(images, masks)
    n_changed = 0
    for mask, new_image, new_mask in zip(masks, flipped, flipped_masks, strict=True):
        options = [mask, mask.flip(1), mask.flip(0), mask.flip(0).flip(1)]
        match = [torch.equal(new_mask, option) for option in options]
        assert any(match)  # exactly one of the four flips, pixel for pixel
        torch.testing.assert_close(new_image[..., 0], new_mask.float() * 10.0, atol=1e-4, rtol=0)
        n_changed += not match[0]
    assert n_changed > 0


def test_shifts_and_zooms_keep_labels_and_mark_pixels_from_outside_as_ignored():
    torch.manual_seed(0)
    images, masks = _batch(n=8, size=16)
    moved, moved_masks = Augmenter(**{**OFF, "shift": 0.25, "scale": 0.3})(images, masks)
    assert moved.shape == images.shape and moved_masks.shape == masks.shape
    assert moved_masks.dtype == masks.dtype
    assert set(torch.unique(moved_masks).tolist()) <= {-1, 0, 1, 2, 3}
    assert (moved_masks == -1).any()  # some pixels came from outside the image
    assert not torch.equal(moved_masks, masks)


def test_class_labels_and_regression_targets_are_left_alone():
    torch.manual_seed(0)
    images, _ = _batch()
    labels = torch.arange(6)
    X = {"X": images, "sample_weight": torch.ones(6)}
    moved, same = Augmenter(**{**OFF, "shift": 0.2, "intensity": 0.5})(X, labels)
    assert torch.equal(same, labels) and torch.equal(moved["sample_weight"], torch.ones(6))
    assert not torch.equal(moved["X"], images)


def test_intensity_changes_values_around_the_channel_mean():
    torch.manual_seed(0)
    images = torch.full((50, 4, 4, 1), 5.0)
    changed, _ = Augmenter(**{**OFF, "intensity": 0.5, "mean": [5.0], "std": [2.0]})(
        images, torch.zeros(50)
    )
    offsets = changed[:, 0, 0, 0] - 5.0  # a constant image only moves in brightness
    assert offsets.abs().max() <= 1.0 + 1e-6 and offsets.std() > 0.1


@pytest.mark.parametrize(
    "augment, message",
    [
        ({"rotate": 10}, r"unknown options \['rotate'\]"),
        ({"shift": 0.7}, r"augment\['shift'\] must be a number in \[0, 0.5\)"),
        ({"hflip": "yes"}, r"augment\['hflip'\] must be True or False"),
        ({"scale": True}, r"augment\['scale'\] must be a number"),
    ],
)
def test_bad_options_are_clear_errors(augment, message):
    X, y = load_digits_images(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        RNNImageClassifier(hidden_size=4, max_epochs=1, augment=augment).fit(X[:20], y[:20])


def test_augment_true_means_the_estimators_standard_options():
    assert check_augment(True, {"shift": 0.1})["shift"] == 0.1
    assert check_augment(False, {"shift": 0.1})["shift"] == 0.0
    assert check_augment({"hflip": True}, {"shift": 0.1}) == {
        "hflip": True,
        "vflip": False,
        "shift": 0.0,
        "scale": 0.0,
        "intensity": 0.0,
    }


def test_ids_cannot_be_augmented():
    tokens = np.random.default_rng(0).integers(0, 5, size=(20, 6))
    clf = RNNImageClassifier(hidden_size=4, max_epochs=1, embedding_dim=3, augment=True)
    with pytest.raises(ValueError, match="augment changes pixel values.*embedding_dim"):
        clf.fit(tokens, np.arange(20) % 2)


@pytest.mark.parametrize(
    "shape, params, augmented",
    [
        ((16, 20), {}, True),  # large enough: the classifier's standard shifts and zooms
        ((8, 8), {}, False),  # the digits: a tenth of a side is less than a pixel
        ((15, 40), {}, False),
        ((16, 16), {"embedding_dim": 3}, False),  # ids are not augmented, and no error
    ],
)
def test_auto_augments_images_large_enough_for_it(shape, params, augmented):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(12, *shape))
    clf = RNNImageClassifier(hidden_size=4, max_epochs=1, n_threads=1, **params)
    assert clf.augment == "auto"
    clf.fit(X, np.arange(12) % 2)
    augmenter = clf._augmenter()
    assert (augmenter is not None) == augmented
    if augmented:
        assert (augmenter.shift, augmenter.scale, augmenter.hflip) == (0.1, 0.1, False)


class RecordBatches(Callback):
    """Keeps the inputs of every training and validation batch."""

    def initialize(self):
        self.train_, self.valid_ = [], []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        (self.train_ if training else self.valid_).append(batch[0].clone())


def test_only_training_batches_are_augmented_and_predictions_stay_deterministic():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:100], y[:100]
    recorder = RecordBatches()
    clf = RNNImageClassifier(
        hidden_size=4,
        max_epochs=2,
        batch_size=100,
        augment=True,
        early_stopping=True,
        validation_fraction=0.2,
        callbacks=[("record", recorder)],
        random_state=0,
    ).fit(X, y)
    training = torch.cat(recorder.train_).cpu().numpy().reshape(-1, 8, 8)
    held_out = torch.cat(recorder.valid_).cpu().numpy().reshape(-1, 8, 8)
    rows = {row.tobytes() for row in X.astype(np.float32)}
    assert not any(image.tobytes() in rows for image in training)  # every one was changed
    assert all(image.tobytes() in rows for image in held_out)  # validation: as they are
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))


def test_augmented_fits_are_reproducible_and_differ_from_plain_ones():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:200], y[:200]
    params = dict(hidden_size=8, max_epochs=2, random_state=0)
    first = RNNImageClassifier(augment=True, **params).fit(X, y).predict_proba(X)
    again = RNNImageClassifier(augment=True, **params).fit(X, y).predict_proba(X)
    plain = RNNImageClassifier(augment=False, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, plain)


def test_segmenter_and_regressor_train_with_augmentation():
    X, Y = make_shapes(n_samples=24, image_size=16, random_state=0)
    seg = RNNSegmenter(
        hidden_size=4, num_layers=1, head=(4,), max_epochs=2, random_state=0, augment=True
    ).fit(X, Y)
    assert seg.predict(X[:2]).shape == (2, 16, 16)
    assert type(seg.net_.iterator_train__augment).__name__ == "Augmenter"
    reg = RNNImageRegressor(
        hidden_size=4, max_epochs=1, random_state=0, augment={"shift": 0.1}
    ).fit(X, X.mean(axis=(1, 2)))
    assert np.isfinite(reg.predict(X[:3])).all()


def test_changing_augment_takes_effect_on_a_warm_start():
    X, y = load_digits_images(return_X_y=True)
    clf = RNNImageClassifier(hidden_size=4, max_epochs=1, warm_start=True, random_state=0)
    clf.fit(X[:50], y[:50])
    assert clf.net_.iterator_train__augment is None
    clf.set_params(augment={"shift": 0.1}).fit(X[:50], y[:50])
    assert clf.net_.iterator_train__augment.shift == 0.1
