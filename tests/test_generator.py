"""RNNImageGenerator: a normalised, causal pixel model that samples, scores and persists."""

import itertools
import pickle

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from torch import nn

import skrnn
from skrnn import RNNImageGenerator
from skrnn.cells import TorchRecurrent, get_cell, register_cell
from skrnn.datasets import load_digits_images

# Tiny networks and few epochs: these tests check behaviour, not quality.
TINY = dict(hidden_size=8, embedding_dim=8, max_epochs=2, batch_size=16, n_threads=1)


def tiny_generator(**params):
    return RNNImageGenerator(**{**TINY, "random_state": 0, **params})


@pytest.fixture(scope="module")
def few_digits():
    X, y = load_digits_images(return_X_y=True)
    return X[:120], y[:120]


@pytest.fixture(scope="module")
def fitted_digits(few_digits):
    X, y = few_digits
    return tiny_generator().fit(X)


@pytest.fixture(scope="module")
def conditional_digits(few_digits):
    X, y = few_digits
    return tiny_generator().fit(X, y)


def all_binary_images(height, width):
    """Every image of ``height * width`` binary pixels."""
    grid = itertools.product([0, 1], repeat=height * width)
    return np.array(list(grid), dtype=np.float64).reshape(-1, height, width)


def random_binary_images(n, shape=(2, 2), seed=0):
    return np.random.RandomState(seed).randint(0, 2, (n, *shape)).astype(np.float64)


# ----------------------------------------------------------------- levels
def test_levels_are_inferred_from_integer_images(fitted_digits):
    assert fitted_digits.n_levels_ == 17
    np.testing.assert_array_equal(fitted_digits.levels_, np.arange(17))


def test_uint8_images_have_256_levels():
    X = np.random.RandomState(0).randint(0, 40, (20, 2, 2)).astype(np.uint8)
    gen = tiny_generator(max_epochs=1).fit(X)
    assert gen.n_levels_ == 256
    samples = gen.sample(3, random_state=0)
    assert samples.dtype == np.uint8


@pytest.mark.parametrize(
    "make",
    [
        lambda b: b.astype(np.uint8),  # binarized MNIST's 0/1 uint8
        lambda b: b.astype(bool),
        lambda b: (b * 255).astype(np.uint8),  # masks saved as 0/255
        lambda b: b * 2.0 - 1.0,  # -1/+1 floats
    ],
    ids=["uint8 0/1", "bool", "uint8 0/255", "float -1/1"],
)
def test_binary_images_have_two_levels_whatever_their_values(make, tmp_path):
    X = make(random_binary_images(40, (3, 3)))
    gen = tiny_generator(max_epochs=1).fit(X)
    assert gen.n_levels_ == 2
    np.testing.assert_array_equal(gen.levels_, [X.min(), X.max()])
    samples = gen.sample(20, random_state=0)
    assert samples.dtype == (X.dtype if X.dtype.kind in "biu" else np.float64)
    assert set(np.unique(samples)) <= {X.min(), X.max()}
    path = tmp_path / "binary.skrnn"
    gen.save(path)
    loaded = skrnn.load(path)
    assert loaded.n_levels_ == 2
    np.testing.assert_array_equal(loaded.score_samples(X[:5]), gen.score_samples(X[:5]))
    between = X[:1].astype(np.float64)
    between[0, 0, 0] = (float(X.min()) + float(X.max())) / 2
    with pytest.raises(ValueError, match="not among the 2 levels"):
        gen.score_samples(between)


def test_given_n_levels_quantises_values(few_digits):
    X, _ = few_digits
    gen = tiny_generator(n_levels=5, max_epochs=1).fit(X)
    np.testing.assert_array_equal(gen.levels_, [0, 4, 8, 12, 16])
    assert np.isin(gen.sample(5, random_state=0), gen.levels_).all()
    # 7 and 9 both lie between levels: they are scored as their nearest level, 8.
    X_off, X_on = X[:2].copy(), X[:2].copy()
    X_off[:, 0, 0], X_on[:, 0, 0] = 7.2, 8.0
    np.testing.assert_allclose(gen.score_samples(X_off), gen.score_samples(X_on))


def test_non_integer_images_get_256_levels_over_their_range():
    X = np.random.RandomState(0).uniform(-1, 3, (20, 2, 3))
    gen = tiny_generator(max_epochs=1).fit(X)
    assert gen.n_levels_ == 256
    assert gen.levels_[0] == X.min() and gen.levels_[-1] == X.max()
    assert np.isfinite(gen.score_samples(X)).all()


# ----------------------------------------------------------------- likelihood
# The log-likelihood of an 8x8 digit under uniform guesses among its 17 levels, in nats.
UNIFORM_DIGIT_LOG_LIKELIHOOD = -64 * np.log(17)  # -181.3


def test_log_likelihoods_are_negative_nats_better_than_uniform(fitted_digits, few_digits):
    X, _ = few_digits
    scores = fitted_digits.score_samples(X[:10])
    assert scores.shape == (10,)
    assert (scores < 0).all()
    # Measured: -137 on average, every image above -155.
    assert scores.mean() > -160 > UNIFORM_DIGIT_LOG_LIKELIHOOD
    assert (scores > UNIFORM_DIGIT_LOG_LIKELIHOOD).all()
    assert fitted_digits.score(X[:10]) == pytest.approx(scores.mean())


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_probabilities_of_all_images_sum_to_one(cell):
    gen = tiny_generator(cell=cell).fit(random_binary_images(30))
    assert gen.n_levels_ == 2
    total = np.exp(gen.score_samples(all_binary_images(2, 2))).sum()
    assert total == pytest.approx(1.0, abs=1e-5)


def test_class_conditional_probabilities_sum_to_one_per_class_and_overall():
    X = random_binary_images(30)
    gen = tiny_generator(hidden_size=(8, 6)).fit(X, np.arange(30) % 3)
    every_image = all_binary_images(2, 2)
    assert np.exp(gen.score_samples(every_image)).sum() == pytest.approx(1.0, abs=1e-5)
    for label in gen.classes_:
        given = np.full(len(every_image), label)
        total = np.exp(gen.score_samples(every_image, given)).sum()
        assert total == pytest.approx(1.0, abs=1e-5)


def test_no_pixel_sees_itself_or_later_pixels(fitted_digits, few_digits):
    """Changing pixel t changes no prediction for pixels 0..t, in raster order."""
    X, _ = few_digits
    module = fitted_digits.net_.module_.eval()
    codes = fitted_digits._codes(fitted_digits._quantise(X[:4]), None)
    codes = torch.as_tensor(codes).long().to(fitted_digits.net_.device)
    with torch.no_grad():
        before = module(codes)
        for t in (0, 9, 37, 63):
            changed = codes.clone()
            changed[:, 1 + t] = (changed[:, 1 + t] + 5) % 17
            after = module(changed)
            torch.testing.assert_close(after[:, :, : t + 1], before[:, :, : t + 1])
            if t < 63:
                assert not torch.allclose(after[:, :, t + 1 :], before[:, :, t + 1 :])


@pytest.mark.parametrize("orderings", [2, 8])
def test_a_mixture_of_orderings_sums_to_one_overall_and_per_class(orderings):
    X = random_binary_images(40)
    gen = tiny_generator(orderings=orderings).fit(X, np.arange(40) % 2)
    every_image = all_binary_images(2, 2)
    assert np.exp(gen.score_samples(every_image)).sum() == pytest.approx(1.0, abs=1e-5)
    for label in gen.classes_:
        given = np.full(len(every_image), label)
        assert np.exp(gen.score_samples(every_image, given)).sum() == pytest.approx(1.0, abs=1e-5)


def test_orderings_are_the_symmetries_of_the_grid_with_each_pixels_channels_in_order():
    from skrnn._pixelrnn import ordering_permutations

    values = np.arange(3 * 3 * 2).reshape(3, 3, 2)  # step numbers in raster order
    expected = [
        values,
        values[:, ::-1],  # the mirror image
        values[::-1],  # upside down
        np.rot90(values, 2),  # the half turn
        values.transpose(1, 0, 2),  # the transpose
        np.rot90(values, -1),  # a quarter turn clockwise
        np.rot90(values, 1),  # a quarter turn anticlockwise
        np.rot90(values, 2).transpose(1, 0, 2),  # the other transpose
    ]
    perms = ordering_permutations((3, 3, 2), 8)
    for g, image in enumerate(expected):
        np.testing.assert_array_equal(perms[g], image.reshape(-1), err_msg=f"ordering {g}")
    np.testing.assert_array_equal(ordering_permutations((3, 3, 2), 4), perms[:4])


def test_in_every_ordering_no_pixel_sees_itself_or_later_pixels():
    """Changing the value read at step k of an ordering changes no prediction of the values
    read at steps 0..k, which sit at raster positions perms[g][: k + 1]."""
    from skrnn._pixelrnn import ordering_permutations

    X = random_binary_images(40, shape=(3, 3))
    gen = tiny_generator(orderings=8, max_epochs=1).fit(X)
    module, device = gen.net_.module_.eval(), gen.net_.device
    codes = torch.as_tensor(gen._codes(gen._quantise(X[:4]), None)).long().to(device)
    perms = ordering_permutations((3, 3, 1), 8)
    with torch.no_grad():
        for g in range(8):
            orderings = torch.full((4,), g, device=device)
            before = module(codes, orderings)
            for k in (0, 4, 7):
                changed = codes.clone()
                changed[:, 1 + perms[g][k]] = 1 - changed[:, 1 + perms[g][k]]
                after = module(changed, orderings)
                seen = perms[g][: k + 1]
                torch.testing.assert_close(after[:, :, seen], before[:, :, seen])
                assert not torch.allclose(
                    after[:, :, perms[g][k + 1 :]], before[:, :, perms[g][k + 1 :]]
                )


def test_colour_images_read_in_every_ordering_sum_to_one():
    colour = random_binary_images(40, shape=(2, 2, 2))
    gen = tiny_generator(orderings=8).fit(colour)
    every_image = np.array(list(itertools.product([0, 1], repeat=8)), float).reshape(-1, 2, 2, 2)
    assert np.exp(gen.score_samples(every_image)).sum() == pytest.approx(1.0, abs=1e-5)
    assert gen.sample(3, random_state=0).shape == (3, 2, 2, 2)


def test_orderings_of_a_non_square_image_are_its_flips():
    X = random_binary_images(30, shape=(2, 3))
    gen = tiny_generator(orderings=4).fit(X)
    assert np.exp(gen.score_samples(all_binary_images(2, 3))).sum() == pytest.approx(1.0, abs=1e-5)
    gen.set_params(orderings=8)
    with pytest.raises(ValueError, match="orderings=8 .* square image; these images are 2x3"):
        gen.fit(X)  # a refit that cannot build its network leaves the estimator unfitted
    with pytest.raises(NotFittedError):
        gen.score_samples(X)


@pytest.mark.parametrize(
    "shape, orderings, distinct",
    [((1, 4), 4, 2), ((4, 1), 2, 1), ((5,), 2, 1)],  # (5,): flat rows, read as 5x1 images
)
def test_orderings_that_would_repeat_an_order_are_refused(shape, orderings, distinct):
    X = random_binary_images(20, shape=shape)
    with pytest.raises(ValueError, match=f"same order twice.*Use orderings={distinct}"):
        tiny_generator(orderings=orderings).fit(X)


def test_warm_start_with_other_orderings_trains_a_new_network():
    X = random_binary_images(20)
    gen = tiny_generator(orderings=2, warm_start=True, max_epochs=1).fit(X)
    gen.set_params(orderings=8)
    with pytest.warns(UserWarning, match=r"orderings 2 -> 8.*new network"):
        gen.fit(X)
    assert gen.net_.module_.n_orderings == 8 and len(gen.history_) == 1


def test_the_ordering_of_a_mixture_matters_to_its_scores():
    """Each ordering is a distinct model: the mean of its members is not any one of them."""
    X, _ = load_digits_images(return_X_y=True)
    gen = tiny_generator(orderings=8).fit(X[:60])
    module, device = gen.net_.module_.eval(), gen.net_.device
    codes = torch.as_tensor(gen._codes(gen._quantise(X[60:64]), None)).long().to(device)
    with torch.no_grad():
        mixture = module.log_likelihood(codes)
        members = []
        for g in range(8):
            orderings = torch.full((4,), g, device=device)
            log_probs = torch.log_softmax(module(codes, orderings).double(), dim=1)
            members.append(log_probs.gather(1, codes[:, None, 1:]).squeeze(1).sum(dim=1))
    members = torch.stack(members)
    torch.testing.assert_close(mixture, torch.logsumexp(members, 0) - np.log(8))
    assert members.std(dim=0).min() > 1e-3


def test_training_reads_every_image_in_a_random_ordering():
    X, _ = load_digits_images(return_X_y=True)
    gen = tiny_generator(orderings=8, max_epochs=1).fit(X[:60])
    module = gen.net_.module_.train()
    codes = torch.as_tensor(gen._codes(gen._quantise(X[:64]), None)).long().to(gen.net_.device)
    torch.manual_seed(0)
    module.zero_grad()
    logits = module(codes)
    torch.nn.functional.cross_entropy(logits, codes[:, 1:]).backward()
    used = module.ordering.weight.grad.abs().sum(dim=1) > 0
    assert used.all(), f"orderings never read in a batch of 64: {(~used).nonzero().tolist()}"


# ----------------------------------------------------------------- sampling
def test_samples_have_the_fitted_shape_and_levels(fitted_digits):
    samples = fitted_digits.sample(7, random_state=0)
    assert samples.shape == (7, 8, 8)
    assert samples.dtype == np.float64
    assert np.isin(samples, np.arange(17)).all()


def test_samples_keep_the_layout_of_flat_rows_and_colour_images():
    rng = np.random.RandomState(0)
    flat = rng.randint(0, 3, (20, 12)).astype(float)
    gen = tiny_generator(max_epochs=1, image_shape=(2, 3, 2)).fit(flat)
    assert gen.sample(4, random_state=0).shape == (4, 12)
    colour = rng.randint(0, 3, (20, 2, 3, 2))
    gen = tiny_generator(max_epochs=1).fit(colour)
    samples = gen.sample(4, random_state=0)
    assert samples.shape == (4, 2, 3, 2) and samples.dtype == colour.dtype


@pytest.mark.parametrize("orderings", [1, 4, 8])
def test_samples_follow_the_scored_distribution(orderings):
    # Images with ink mostly on the left: the orderings read them from different sides, and
    # their samples must come back in raster order with the probabilities score_samples gives.
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(200, 2, 2)) < [[0.9, 0.2], [0.7, 0.1]]).astype(float)
    gen = tiny_generator(orderings=orderings, max_epochs=20).fit(X)
    every_image = all_binary_images(2, 2)
    expected = np.exp(gen.score_samples(every_image))
    samples = gen.sample(6000, random_state=0).reshape(6000, 4)
    index = (samples * [8, 4, 2, 1]).sum(axis=1).astype(int)  # the row of all_binary_images
    observed = np.bincount(index, minlength=16) / len(samples)
    assert 0.5 * np.abs(observed - expected).sum() < 0.03


def test_sampling_is_reproducible_with_random_state(fitted_digits):
    first = fitted_digits.sample(5, random_state=3)
    np.testing.assert_array_equal(first, fitted_digits.sample(5, random_state=3))
    assert not np.array_equal(first, fitted_digits.sample(5, random_state=4))


def test_low_temperature_gives_less_varied_samples(fitted_digits):
    varied = fitted_digits.sample(40, temperature=1.0, random_state=0)
    typical = fitted_digits.sample(40, temperature=0.05, random_state=0)
    assert typical.std(axis=0).mean() < varied.std(axis=0).mean()


def test_class_conditional_sampling_draws_the_requested_class():
    # Class "top" has ink in the top row only, class "bottom" in the bottom row only.
    rng = np.random.RandomState(0)
    X = np.zeros((60, 2, 3))
    y = np.array(["top", "bottom"] * 30)
    X[y == "top", 0] = rng.randint(1, 3, (30, 3))
    X[y == "bottom", 1] = rng.randint(1, 3, (30, 3))
    gen = tiny_generator(hidden_size=16, max_epochs=30, lr=1e-2).fit(X, y)
    top = gen.sample(20, y="top", random_state=0)
    bottom = gen.sample(20, y=["bottom"] * 20, random_state=0)
    assert top[:, 0].mean() > 1 > top[:, 1].mean()
    assert bottom[:, 1].mean() > 1 > bottom[:, 0].mean()
    images, labels = gen.sample(30, random_state=0, return_y=True)
    assert set(labels) == {"top", "bottom"}
    rows_with_ink = np.where(labels == "top", 0, 1)
    assert (images[np.arange(30), rows_with_ink].mean(axis=1) >= 1).mean() > 0.8


class CellWithoutState(nn.Module):
    """A plugin-style cell that torch's step-by-step API does not know."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


def make_stateless_gru(input_size, hidden_size, num_layers, bidirectional, dropout):
    return CellWithoutState(input_size, hidden_size)


class PeekingCell(nn.Module):
    """Reads the sequence in both directions, whatever it is asked for."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size // 2, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.gru(x)[0]


def make_peeking_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
    return PeekingCell(input_size, hidden_size)


def test_plugin_cells_sample_like_torch_cells(fitted_digits, few_digits):
    """A cell re-run on the growing prefix draws exactly what a state-carrying cell draws."""
    register_cell("test_stateless_gru", make_stateless_gru, overwrite=True)
    X, _ = few_digits
    plugin = tiny_generator(cell="test_stateless_gru").fit(X)
    torch_cell = tiny_generator(cell=get_cell("gru")).fit(X)
    assert plugin.net_.module_._stateful_layers() is None
    np.testing.assert_allclose(plugin.score_samples(X[:5]), torch_cell.score_samples(X[:5]))
    np.testing.assert_array_equal(
        plugin.sample(3, random_state=0), torch_cell.sample(3, random_state=0)
    )


def make_bidirectional_torch_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
    return TorchRecurrent(
        nn.LSTM(input_size, hidden_size // 2, batch_first=True, bidirectional=True)
    )


@pytest.mark.parametrize("factory", [make_peeking_cell, make_bidirectional_torch_cell])
def test_a_cell_that_reads_ahead_is_rejected(factory):
    with pytest.raises(ValueError, match="not causal"):
        tiny_generator(cell=factory).fit(random_binary_images(10))


# ----------------------------------------------------------------- persistence and sklearn
def test_pickle_round_trip(conditional_digits, few_digits):
    X, y = few_digits
    restored = pickle.loads(pickle.dumps(conditional_digits))
    np.testing.assert_allclose(
        restored.score_samples(X[:5]), conditional_digits.score_samples(X[:5])
    )
    np.testing.assert_array_equal(
        restored.sample(4, y=3, random_state=1), conditional_digits.sample(4, y=3, random_state=1)
    )


def test_a_mixture_of_orderings_survives_a_model_file(tmp_path, few_digits):
    import skrnn

    X, y = few_digits
    gen = tiny_generator(orderings=4, max_epochs=1).fit(X, y)
    gen.save(tmp_path / "gen.skrnn")
    restored = skrnn.load(tmp_path / "gen.skrnn")
    assert restored.orderings == 4
    np.testing.assert_allclose(restored.score_samples(X[:5]), gen.score_samples(X[:5]))
    np.testing.assert_array_equal(
        restored.sample(4, y=3, random_state=1), gen.sample(4, y=3, random_state=1)
    )


def test_cross_val_score_ranks_by_log_likelihood(few_digits):
    X, _ = few_digits
    scores = cross_val_score(tiny_generator(max_epochs=1), X[:60], cv=2)
    assert (scores < 0).all()
    # Held-out images are likelier than under uniform guesses (measured: -140 on both folds).
    assert (scores > -160).all()


def test_warm_start_continues_a_class_conditional_model(few_digits):
    X, y = few_digits
    gen = tiny_generator(max_epochs=1, warm_start=True).fit(X, y)
    gen.fit(X, y)
    assert gen.n_iter_ == 2
    with pytest.raises(ValueError, match="pass y to continue"):
        gen.fit(X)


# ----------------------------------------------------------------- bad input
def test_values_outside_the_levels_are_rejected(fitted_digits, few_digits):
    X, _ = few_digits
    with pytest.raises(ValueError, match=r"outside the levels.*run from 0 to 16"):
        fitted_digits.score_samples(X[:3] + 1)
    with pytest.raises(ValueError, match="outside the levels"):
        fitted_digits.score_samples(-X[:3] - 1)


def test_values_between_integer_levels_are_rejected(fitted_digits, few_digits):
    X, _ = few_digits
    with pytest.raises(
        ValueError, match=r"not among the 17 levels.*integers 0 to 16.*example 0\.15625"
    ):
        fitted_digits.score_samples(X[:3] / 32)


def test_nan_is_rejected(few_digits):
    X, _ = few_digits
    X_nan = X[:20].copy()
    X_nan[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_generator().fit(X_nan)


def test_images_of_another_shape_are_rejected_at_score_time(fitted_digits):
    with pytest.raises(ValueError, match=r"shape \(7, 7\) but this RNNImageGenerator was fitted"):
        fitted_digits.score_samples(np.zeros((2, 7, 7)))


def test_labels_of_the_wrong_length_are_rejected(few_digits, conditional_digits):
    X, y = few_digits
    with pytest.raises(ValueError, match="X has 20, y has 19"):
        tiny_generator().fit(X[:20], y[:19])
    with pytest.raises(ValueError, match="X has 5, y has 4"):
        conditional_digits.score_samples(X[:5], y[:4])
    with pytest.raises(ValueError, match="y has 2 labels but n_samples=3"):
        conditional_digits.sample(3, y=[1, 2])


def test_unknown_class_at_sample_time_is_rejected(conditional_digits):
    with pytest.raises(ValueError, match=r"labels \[11\] that are not among the classes"):
        conditional_digits.sample(2, y=11)


def test_sampling_arguments_are_checked(fitted_digits):
    with pytest.raises(ValueError, match="fitted without labels"):
        fitted_digits.sample(2, y=1)
    with pytest.raises(ValueError, match="n_samples must be at least 1"):
        fitted_digits.sample(0)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        fitted_digits.sample(2, temperature=0)
    with pytest.raises(ValueError, match="return_y=True needs a class-conditional"):
        fitted_digits.sample(2, return_y=True)


def test_too_many_integer_levels_ask_for_n_levels():
    X = np.arange(2 * 4 * 10_000, step=10_000, dtype=np.int64).reshape(2, 2, 2)
    with pytest.raises(ValueError, match="pass n_levels"):
        tiny_generator().fit(X)


def test_documented_defaults_match_the_signature():
    import ast
    import inspect
    import re

    doc = RNNImageGenerator.__doc__
    for name, parameter in inspect.signature(RNNImageGenerator).parameters.items():
        match = re.search(rf"\n    {name} : .*default=(.*)\n", doc)
        assert match, f"{name} is not documented"
        assert ast.literal_eval(match.group(1).strip()) == parameter.default, name
