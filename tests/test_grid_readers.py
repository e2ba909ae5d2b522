"""The generator's grid readers (PixelRNN's Row LSTM and Diagonal BiLSTM): causal in every
ordering, normalised, sampled from the distribution they score, and saved like the rest."""

import itertools

import numpy as np
import pytest
import torch

import skrnn
from skrnn import RNNImageGenerator
from skrnn._pixelgrid import GridPixelModel, causal_mask

READERS = ["rows", "diagonal"]
TINY = dict(hidden_size=4, embedding_dim=4, batch_size=16, n_threads=1, random_state=0)


def _violations(model, shape, orderings, n_levels=3):
    """How many (ordering, value) pairs let a value's logits or an earlier value's change when
    the value itself changes: 0 for a causal model."""
    torch.manual_seed(0)
    steps = int(np.prod(shape))
    codes = torch.cat([torch.tensor([[0], [1]]), torch.randint(0, n_levels, (2, steps))], 1)
    count = 0
    with torch.no_grad():
        for g in range(orderings):
            order = torch.full((2,), g)
            base = model(codes, order)
            step_of = torch.empty(steps, dtype=torch.long)
            step_of[model.perms[g]] = torch.arange(steps)  # when ordering g reads each value
            for value in range(steps):
                changed = codes.clone()
                changed[:, 1 + value] = (changed[:, 1 + value] + 1) % n_levels
                diff = (model(changed, order) - base).abs().amax(dim=(0, 1))
                count += int(diff[step_of <= step_of[value]].max() > 1e-6)
    return count


def _small_model(shape, reader, num_layers=1, orderings=1):
    """A grid reader of 3 units per channel over 3 levels and 2 classes, in eval mode."""
    return GridPixelModel(
        image_shape=shape, n_levels=3, n_classes=2, reader=reader, hidden_size=3,
        num_layers=num_layers, dropout=0.0, embedding_dim=4, orderings=orderings,
    ).eval()  # fmt: skip


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("shape, orderings", [((3, 4, 2), 1), ((3, 4, 1), 4), ((3, 3, 2), 8)])
def test_no_value_depends_on_itself_or_a_later_value(reader, shape, orderings):
    model = _small_model(shape, reader, num_layers=2, orderings=orderings)
    assert _violations(model, shape, orderings) == 0


@pytest.mark.parametrize("reader", READERS)
def test_the_causality_check_finds_a_mask_that_lets_a_value_see_itself(reader):
    model = _small_model((3, 4, 1), reader)
    model.first.mask = causal_mask([0] * 3, [0] * 4, (7, 7), "B")  # mask A is what keeps it out
    assert _violations(model, (3, 4, 1), 1) > 0


def test_the_diagonal_readers_right_to_left_half_needs_its_shift():
    model = _small_model((3, 4, 1), "diagonal")
    layer = model.layers[0]
    layer.forward = lambda x: layer.forward_lstm(x) + layer.backward_lstm(x.flip(-1)).flip(-1)
    assert _violations(model, (3, 4, 1), 1) > 0


def all_binary_images(height, width):
    grid = itertools.product([0, 1], repeat=height * width)
    return np.array(list(grid), dtype=np.uint8).reshape(-1, height, width)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("orderings", [1, 8])
def test_probabilities_sum_to_one_and_samples_follow_them(reader, orderings):
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(200, 2, 2)) < [[0.9, 0.2], [0.7, 0.1]]).astype(np.uint8)
    gen = RNNImageGenerator(reader=reader, orderings=orderings, max_epochs=20, **TINY).fit(X)
    every_image = all_binary_images(2, 2)
    expected = np.exp(gen.score_samples(every_image))
    assert expected.sum() == pytest.approx(1.0, abs=1e-6)
    samples = gen.sample(6000, random_state=0).reshape(6000, 4).astype(int)
    index = (samples * [8, 4, 2, 1]).sum(axis=1)  # the row of every_image
    observed = np.bincount(index, minlength=16) / len(samples)
    assert 0.5 * np.abs(observed - expected).sum() < 0.03


@pytest.mark.parametrize("reader", READERS)
def test_class_conditional_colour_models_are_normalised_per_class(reader):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 2, (40, 1, 2, 2)).astype(np.uint8)
    y = rng.randint(0, 2, 40)
    gen = RNNImageGenerator(reader=reader, max_epochs=2, **TINY).fit(X, y)
    every_image = np.array(list(itertools.product([0, 1], repeat=4)), np.uint8)
    every_image = every_image.reshape(-1, 1, 2, 2)
    for label in (0, 1):
        total = np.exp(gen.score_samples(every_image, np.full(16, label))).sum()
        assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("reader", READERS)
def test_grid_readers_save_and_load(reader, tmp_path):
    X = np.random.RandomState(0).randint(0, 2, (30, 5, 4)).astype(np.uint8)
    gen = RNNImageGenerator(reader=reader, num_layers=2, max_epochs=1, **TINY).fit(X)
    path = tmp_path / "gen.skrnn"
    gen.save(path)
    loaded = skrnn.load(path)
    assert loaded.reader == reader
    np.testing.assert_array_equal(loaded.score_samples(X[:4]), gen.score_samples(X[:4]))
    np.testing.assert_array_equal(loaded.sample(2, random_state=1), gen.sample(2, random_state=1))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"cell": "gru"}, "cell='gru' applies to reader='pixels' only"),
        ({"context_radius": 2}, "context_radius=2 applies to reader='pixels' only"),
        ({"hidden_size": (4, 8)}, "same units in every layer"),
        ({"reader": "columns"}, "reader"),
    ],
)
def test_grid_reader_parameters_are_checked(params, message):
    X = np.random.RandomState(0).randint(0, 2, (10, 3, 3)).astype(np.uint8)
    with pytest.raises(ValueError, match=message):
        RNNImageGenerator(**{**TINY, "reader": "rows", **params}).fit(X)


@pytest.mark.parametrize("first, then", [("rows", "diagonal"), ("pixels", "rows")])
def test_a_warm_start_with_another_reader_trains_a_new_network(first, then):
    X = np.random.RandomState(0).randint(0, 2, (20, 3, 3)).astype(np.uint8)
    gen = RNNImageGenerator(reader=first, max_epochs=1, warm_start=True, **TINY).fit(X)
    with pytest.warns(UserWarning, match="new network"):
        gen.set_params(reader=then).fit(X)
    assert gen.net_.module_.reader == then and len(gen.history_) == 1


@pytest.mark.parametrize(
    "shape, reader, sizes",
    [
        ((16, 16), "pixels", {"num_layers": 1, "dropout": 0.4, "embedding_dim": 64}),
        ((17, 16), "rows", {"num_layers": 2, "dropout": 0.0, "embedding_dim": 8}),
        ((10, 10, 3), "rows", {"num_layers": 2, "dropout": 0.0, "embedding_dim": 8}),
    ],
)
def test_reader_auto_reads_small_images_by_pixels_and_larger_ones_by_rows(shape, reader, sizes):
    X = np.random.RandomState(0).randint(0, 2, (6, *shape)).astype(np.uint8)
    gen = RNNImageGenerator(hidden_size=4, max_epochs=1, n_threads=1, random_state=0).fit(X)
    assert gen.reader == "auto"  # the parameter is left as given
    assert getattr(gen.net_.module_, "reader", "pixels") == reader
    params = gen._module_params()
    assert {name: params[name] for name in sizes} == sizes
    assert params["hidden_size"] == 4


def test_auto_sizes_follow_the_reader_and_explicit_ones_win():
    gen = RNNImageGenerator(reader="rows")
    gen.image_shape_, gen.n_levels_ = (5, 5, 1), 2
    assert gen._module_params()["hidden_size"] == 32
    gen.set_params(reader="pixels")
    assert gen._module_params()["hidden_size"] == 256
    gen.set_params(reader="rows", hidden_size=(6, 6), num_layers="auto", dropout=0.1)
    params = gen._module_params()
    assert (params["hidden_size"], params["num_layers"], params["dropout"]) == (6, 2, 0.1)


def test_auto_epochs_stop_at_a_budget_of_predicted_values():
    gen = RNNImageGenerator()
    gen.n_features_in_ = 28 * 28
    assert gen._epochs(50_000) == 4  # binarized MNIST: 4 passes over 39 million values
    gen.n_features_in_ = 64
    assert gen._epochs(1_437) == 30  # the digits keep their 30 epochs
    gen.set_params(max_epochs=12)
    gen.n_features_in_ = 28 * 28
    assert gen._epochs(50_000) == 12  # an explicit number is never cut


def test_pixel_only_parameters_name_the_reader_auto_chose():
    X = np.random.RandomState(0).randint(0, 2, (6, 17, 17)).astype(np.uint8)
    with pytest.raises(ValueError, match="reader='auto' chose 'rows'"):
        RNNImageGenerator(cell="gru", **TINY).fit(X)
