"""RNNSequenceRecognizer: reading a line of symbols from an image with CTC."""

import io
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

import skrnn
from skrnn import RNNSequenceRecognizer
from skrnn._recognizer import LineReader
from skrnn.datasets import make_digit_strings
from skrnn.metrics import character_error_rate_scorer

TINY = dict(hidden_size=8, conv=(4,), max_epochs=2, batch_size=16, n_threads=1, random_state=0)


def bar_lines(n=96, seed=0, max_length=4, symbols="ab"):
    """Lines of bars a recogniser learns in seconds: ``a`` inks the top half of two columns,
    ``b`` the bottom half, with two blank columns between symbols."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 4, 4 * max_length + 2), dtype=np.float32)
    y = []
    for i in range(n):
        text = "".join(rng.choice(list(symbols), size=rng.integers(1, max_length + 1)))
        for j, symbol in enumerate(text):
            rows = slice(0, 2) if symbol == "a" else slice(2, 4)
            X[i, rows, 2 + 4 * j : 4 + 4 * j] = 1.0
        y.append(text)
    return X, np.array(y, dtype=object)


@pytest.fixture(scope="module")
def bars():
    return bar_lines()


@pytest.fixture(scope="module")
def fitted(bars):
    X, y = bars
    reader = RNNSequenceRecognizer(
        hidden_size=16,
        conv=(),
        stride=1,
        max_epochs=40,
        batch_size=16,
        lr=1e-2,
        n_threads=1,
        random_state=0,
    )
    return reader.fit(X, y)


def test_learns_to_read_lines_of_bars(fitted, bars):
    X, y = bar_lines(40, seed=1)
    assert fitted.score(X, y) >= 0.9
    assert fitted.alphabet_.tolist() == ["a", "b"]


def test_predict_returns_strings_for_strings(fitted, bars):
    read = fitted.predict(bars[0][:5])
    assert read.shape == (5,) and read.dtype == object
    assert all(isinstance(text, str) for text in read)


def test_sequences_of_labels_give_tuples_of_labels():
    X, y = bar_lines(32)
    labels = [tuple(10 if s == "a" else 20 for s in text) for text in y]
    reader = RNNSequenceRecognizer(**TINY).fit(X, labels)
    assert reader.alphabet_.tolist() == [10, 20]
    read = reader.predict(X[:4])
    assert all(isinstance(sequence, tuple) for sequence in read)
    assert all(label in (10, 20) for sequence in read for label in sequence)


def test_a_two_dimensional_y_is_one_sequence_per_row():
    X, _ = bar_lines(16)
    y = np.tile([[1, 2], [2, 2]], (8, 1))
    reader = RNNSequenceRecognizer(**TINY).fit(X, y)
    assert reader.alphabet_.tolist() == [1, 2]


def test_lines_of_different_widths_are_padded_and_read(bars):
    X, y = bars
    lines = [image[:, : 4 * len(text) + 2] for image, text in zip(X, y, strict=True)]
    reader = RNNSequenceRecognizer(**TINY).fit(lines, y)
    assert reader.image_shape_ == (4, X.shape[2], 1)
    assert reader.predict(lines[:7]).shape == (7,)
    # wider lines than any seen in fit are read too
    assert reader.predict(np.zeros((2, 4, 60))).shape == (2,)


def test_empty_targets_are_allowed_beside_others(bars):
    X, y = bars
    y = y.copy()
    y[::3] = ""
    RNNSequenceRecognizer(**TINY).fit(X, y)


def test_refuses_lines_of_different_heights():
    with pytest.raises(ValueError, match=r"X\[1\] is 5 pixels high but X\[0\] is 4"):
        RNNSequenceRecognizer(**TINY).fit([np.zeros((4, 10)), np.zeros((5, 10))], ["a", "b"])


def test_refuses_when_every_target_is_empty(bars):
    with pytest.raises(ValueError, match="Every target in y is empty"):
        RNNSequenceRecognizer(**TINY).fit(bars[0], [""] * len(bars[0]))


def test_says_which_image_is_too_narrow_for_its_target():
    X = np.zeros((3, 4, 6))
    with pytest.raises(ValueError, match=r"y\[1\].*X\[1\] is 6 pixels wide.*at least 11 pixels"):
        # 4 symbols and 2 blanks between the repeated a's: 6 steps of 2 columns
        RNNSequenceRecognizer(**TINY).fit(X, ["ab", "aaab", "b"])


def test_score_refuses_symbols_it_cannot_emit(fitted, bars):
    with pytest.raises(ValueError, match=r"symbols \['c'\].*can never emit"):
        fitted.score(bars[0][:2], ["ab", "c"])


def test_predict_refuses_lines_of_another_height(fitted):
    with pytest.raises(ValueError, match="5 pixels high.*fitted on lines 4 pixels high"):
        fitted.predict(np.zeros((2, 5, 10)))


def test_refuses_horizontal_flips(bars):
    with pytest.raises(ValueError, match="read backwards"):
        RNNSequenceRecognizer(augment={"hflip": True}, **TINY).fit(*bars)


def test_augments_tall_lines_by_default_without_flips():
    reader = RNNSequenceRecognizer(**TINY)
    reader.image_shape_, reader._input_mean, reader._input_std = (16, 40, 1), [0.0], [1.0]
    augmenter = reader._augmenter()
    assert augmenter is not None and not augmenter.hflip and augmenter.shift == 0


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        RNNSequenceRecognizer().predict(np.zeros((1, 4, 10)))


def test_saves_and_loads(fitted, bars):
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    loaded = skrnn.load(buffer)
    assert type(loaded) is RNNSequenceRecognizer
    assert list(loaded.predict(bars[0][:10])) == list(fitted.predict(bars[0][:10]))
    copy = pickle.loads(pickle.dumps(fitted))
    assert list(copy.predict(bars[0][:10])) == list(fitted.predict(bars[0][:10]))


def test_grid_search_over_cells(bars):
    X, y = bars
    search = GridSearchCV(RNNSequenceRecognizer(**TINY), {"cell": ["rnn", "gru"]}, cv=2)
    search.fit(X[:48], y[:48])
    assert search.best_params_["cell"] in ("rnn", "gru")
    scores = GridSearchCV(
        clone(RNNSequenceRecognizer(**TINY)),
        {"stride": [1]},
        cv=2,
        scoring=character_error_rate_scorer,
    ).fit(X[:32], y[:32])
    assert scores.best_score_ <= 0


def test_reads_digit_strings_with_the_conv_front_end():
    X, y = make_digit_strings(40, max_length=3, random_state=0)
    reader = RNNSequenceRecognizer(**TINY).fit(X, y)
    assert set("".join(reader.predict(X))) <= set(reader.alphabet_.tolist())


def test_line_reader_gives_one_step_per_stride_columns():
    import torch

    reader = LineReader(
        height=7,
        n_channels=3,
        n_outputs=5,
        cell="lstm",
        hidden_size=4,
        num_layers=2,
        bidirectional=False,
        dropout=0.0,
        conv=(3, 5),
        stride=3,
    )
    out = reader(torch.rand(2, 7, 10, 3))
    assert out.shape == (2, 4, 5)
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 4))


def test_reads_the_same_in_any_order_batch_and_refit(bars):
    X, y = bars
    reader = RNNSequenceRecognizer(**TINY).fit(X, y)
    full = list(reader.predict(X))
    assert list(reader.predict(X[::-1]))[::-1] == full
    assert [reader.predict(X[i : i + 1])[0] for i in range(0, 96, 11)] == full[::11]
    assert list(clone(reader).fit(X, y).predict(X)) == full


def test_labels_of_several_types_stay_apart():
    X, _ = bar_lines(16)
    y = [(1, "1"), ("1",), (1,), ()] * 4
    reader = RNNSequenceRecognizer(**TINY).fit(X, y)
    assert reader.alphabet_.dtype == object and reader.alphabet_.tolist() == [1, "1"]
    assert all(isinstance(sequence, tuple) for sequence in reader.predict(X[:3]))
