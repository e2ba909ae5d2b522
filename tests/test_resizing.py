"""Progressive resizing: the segmenter's first epochs train on images at half size."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skrnn import RNNSegmenter
from skrnn._resizing import Downscaled, coarse_epochs
from skrnn.datasets import make_shapes

TINY = dict(hidden_size=4, num_layers=1, conv=(4,), head=(), n_threads=1, random_state=0)


class BatchSizes(Callback):
    """Record the image size of every training batch, per epoch."""

    def on_train_begin(self, net, **kwargs):
        self.sizes = []

    def on_epoch_begin(self, net, **kwargs):
        self.sizes.append(set())

    def on_batch_begin(self, net, batch, training, **kwargs):
        if training:
            X = batch[0]["X"] if isinstance(batch[0], dict) else batch[0]
            self.sizes[-1].add(tuple(X.shape[1:3]))


def test_downscaled_batches_halve_the_images_and_keep_each_pixels_label():
    images = torch.arange(2 * 4 * 6 * 3, dtype=torch.float32).reshape(2, 4, 6, 3)
    masks = torch.arange(2 * 4 * 6).reshape(2, 4, 6)
    transform = Downscaled()
    assert transform(images, masks) == (images, masks)  # off until a coarse epoch
    transform.coarse = True
    small, small_masks = transform({"X": images, "sample_weight": torch.ones(2)}, masks)
    assert small["X"].shape == (2, 2, 3, 3) and small["sample_weight"].shape == (2,)
    # Each new pixel takes the label of the pixel nearest its centre.
    np.testing.assert_array_equal(small_masks, masks[:, 1::2, 1::2])
    # Bilinear with antialiasing: a ramp along the rows keeps its value at each new pixel's
    # centre (away from the border, which the filter extends).
    ramp = torch.arange(6, dtype=torch.float32).expand(1, 4, 6)[..., None]
    small, _ = transform(ramp, masks[:1])
    torch.testing.assert_close(small[0, :, 1, 0], torch.full((2,), 2.5))


def test_odd_sizes_are_cropped_to_whole_pixels():
    transform = Downscaled()
    transform.coarse = True
    small, masks = transform(torch.zeros(1, 5, 7, 1), torch.zeros(1, 5, 7, dtype=torch.long))
    assert small.shape == (1, 2, 3, 1) and masks.shape == (1, 2, 3)


@pytest.mark.parametrize(
    "share, epochs, coarse", [(0.75, 27, 20), (0.75, 4, 3), (0.5, 4, 2), (0.9, 2, 1), (0, 9, 0)]
)
def test_the_coarse_epochs_leave_at_least_one_at_full_size(share, epochs, coarse):
    assert coarse_epochs(share, epochs) == coarse


def test_a_fit_trains_its_first_epochs_at_half_size_and_predicts_at_full_size():
    X, Y = make_shapes(n_samples=16, image_size=32, random_state=0)
    sizes = BatchSizes()
    seg = RNNSegmenter(
        **TINY, max_epochs=4, batch_size=8, progressive_resizing=0.5, callbacks=[sizes]
    )
    seg.fit(X, Y)
    assert sizes.sizes == [{(16, 16)}, {(16, 16)}, {(32, 32)}, {(32, 32)}]
    assert seg.predict(X).shape == Y.shape
    assert seg.net_.iterator_train__augment.coarse is False  # off again after the fit


def test_auto_resizes_photos_but_not_small_images():
    X, Y = make_shapes(n_samples=8, image_size=32, random_state=0)
    small = RNNSegmenter(**TINY, max_epochs=2).fit(X, Y)
    assert small._coarse_share() == 0 and "coarse_to_fine" not in dict(small.net_.callbacks_)
    X, Y = make_shapes(n_samples=4, image_size=64, random_state=0)
    sizes = BatchSizes()
    large = RNNSegmenter(**TINY, max_epochs=4, callbacks=[sizes]).fit(X, Y)
    assert large._coarse_share() == 0.75
    assert [len(s) and s.pop()[0] for s in sizes.sizes] == [32, 32, 32, 64]


def test_progressive_resizing_keeps_augmentation_and_is_checked():
    X, Y = make_shapes(n_samples=8, image_size=32, random_state=0)
    seg = RNNSegmenter(**TINY, max_epochs=2, progressive_resizing=True, augment=True).fit(X, Y)
    assert seg.net_.iterator_train__augment.augment is not None  # augmented, then downscaled
    with pytest.raises(ValueError, match="progressive_resizing"):
        RNNSegmenter(progressive_resizing=1.5).fit(X, Y)


def test_integer_images_stay_whole_and_early_stopping_fits_stay_at_full_size():
    transform = Downscaled()
    transform.coarse = True
    small, _ = transform(
        torch.tensor([[[[200], [201]]]], dtype=torch.uint8).expand(1, 2, 2, 1),
        torch.zeros(1, 2, 2, dtype=torch.long),
    )
    assert small.dtype == torch.uint8 and small.item() in (200, 201)
    X, Y = make_shapes(n_samples=12, image_size=64, random_state=0)
    seg = RNNSegmenter(**TINY, max_epochs=2, early_stopping=True).fit(X, Y)
    assert seg._coarse_share() == 0  # "auto": early stopping's fit has no known length


def test_resizing_images_one_pixel_high_is_a_clear_error():
    X = np.random.default_rng(0).random((8, 1, 8))
    Y = (X > 0.5).astype(int)
    with pytest.raises(ValueError, match="1 pixel"):
        RNNSegmenter(**TINY, max_epochs=2, progressive_resizing=0.5).fit(X, Y)
    RNNSegmenter(**TINY, max_epochs=2).fit(X, Y)  # "auto" leaves them at full size
