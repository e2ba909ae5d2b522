"""Recognition metrics and data: edit distance, character error rate, sequence accuracy, the
digit-string lines and the line-folder loader."""

import numpy as np
import pytest

from skrnn.datasets import load_line_folder, make_digit_strings
from skrnn.metrics import (
    character_error_rate,
    character_error_rate_scorer,
    edit_distance,
    sequence_accuracy,
    sequence_accuracy_scorer,
)


@pytest.mark.parametrize(
    "reference, hypothesis, distance",
    [
        ("", "", 0),
        ("abc", "abc", 0),
        ("abc", "", 3),  # three deletions
        ("", "ab", 2),  # two insertions
        ("kitten", "sitting", 3),  # k->s, e->i, +g
        ("flaw", "lawn", 2),  # -f, +n
        ((1, 2, 3), [1, 3], 1),
        (("a", 7), (7, "a"), 2),
    ],
)
def test_edit_distance_matches_hand_counts(reference, hypothesis, distance):
    assert edit_distance(reference, hypothesis) == distance
    assert edit_distance(hypothesis, reference) == distance


def test_character_error_rate_is_edits_per_reference_symbol():
    # 1 deletion in "hello", 1 deletion + 1 insertion in "world": 3 edits over 10 symbols
    assert character_error_rate(["hello", "world"], ["helo", "word!"]) == pytest.approx(0.3)
    # an empty reference adds its insertions but no length: 2 / 3
    assert character_error_rate(["abc", ""], ["abc", "xy"]) == pytest.approx(2 / 3)
    # weights count each line's edits and length: (0 * 1 + 2 * 1) / (0 * 2 + 2 * 1)
    assert character_error_rate(["ab", "c"], ["ab", "d"], sample_weight=[0, 2]) == 1.0
    assert character_error_rate([(1, 2)], [(2,)]) == 0.5


def test_character_error_rate_refuses_empty_references_only():
    with pytest.raises(ValueError, match="every reference sequence in y_true is empty"):
        character_error_rate(["", ""], ["a", ""])
    with pytest.raises(ValueError, match="different numbers"):
        character_error_rate(["a"], ["a", "b"])


def test_sequence_accuracy_counts_exact_reads():
    assert sequence_accuracy(["12", "345", ""], ["12", "34", ""]) == pytest.approx(2 / 3)
    assert sequence_accuracy([(1, 2), (3,)], [[1, 2], (4,)]) == 0.5
    assert sequence_accuracy(np.array([[1, 2], [3, 4]]), [(1, 2), (3, 5)]) == 0.5
    assert sequence_accuracy(["a", "b"], ["a", "c"], sample_weight=[3, 1]) == 0.75


def test_scorers_are_greater_is_better():
    class Reader:
        def predict(self, X):
            return np.array(["12", "4"], dtype=object)

    assert sequence_accuracy_scorer(Reader(), None, ["12", "34"]) == 0.5
    assert character_error_rate_scorer(Reader(), None, ["12", "34"]) == -0.25


def test_digit_strings_have_the_asked_lengths_and_shapes():
    X, y, spans = make_digit_strings(
        50, min_length=2, max_length=5, return_spans=True, random_state=0
    )
    assert X.shape == (50, 10, 2 * 2 + 5 * 8 + 4 * 3)
    assert all(2 <= len(text) <= 5 and text.isdigit() for text in y)
    assert [len(s) for s in spans] == [len(text) for text in y]
    assert all(stop - start == 8 for line in spans for start, stop in line)
    again, same = make_digit_strings(50, min_length=2, max_length=5, random_state=0)
    assert np.array_equal(X, again) and list(y) == list(same)


def test_digit_strings_of_variable_width_fit_their_text():
    X, y = make_digit_strings(20, variable_width=True, noise=0.0, random_state=1)
    assert isinstance(X, list) and len(X) == 20
    assert all(
        image.shape[0] == 10 and image.shape[1] <= 2 * 2 + 8 * len(text) + 3 * (len(text) - 1)
        for image, text in zip(X, y, strict=True)
    )
    with pytest.raises(ValueError, match="min_length"):
        make_digit_strings(5, min_length=4, max_length=2)


def test_digit_strings_from_other_glyphs_place_each_glyph_at_its_span():
    rng = np.random.RandomState(0)
    glyphs = (rng.rand(30, 6, 4) > 0.5).astype(np.uint8)
    labels = np.arange(30) % 3 + 7  # symbols "7", "8", "9"
    X, y, spans = make_digit_strings(
        40, min_length=3, max_length=5, spacing=(0, 2), jitter=0, noise=0.0,
        glyphs=(glyphs, labels), return_spans=True, random_state=0,
    )  # fmt: skip
    assert X.shape == (40, 6, 2 * 2 + 5 * 4 + 4 * 2) and X.max() == 1
    assert all(set(text) <= set("789") and 3 <= len(text) <= 5 for text in y)
    for image, text, line in zip(X, y, spans, strict=True):
        for symbol, (start, stop) in zip(text, line, strict=True):
            crop = image[:, start:stop]
            # The crop is one of the glyphs of that symbol, and of no other.
            match = [
                label
                for glyph, label in zip(glyphs, labels, strict=True)
                if np.array_equal(glyph, crop)
            ]
            assert match and set(map(str, match)) == {symbol}
        assert not image[:, line[-1][1] :].any()  # blank after the last glyph


@pytest.mark.parametrize(
    "glyphs, message",
    [
        (np.zeros((3, 4, 4)), "pair"),
        ((np.zeros((3, 4)), [1, 2, 3]), r"shape \(n, h, w\)"),
        ((np.zeros((3, 4, 4)), [1, 2]), "one label per image"),
        ((-np.ones((3, 4, 4)), [1, 2, 3]), "non-negative"),
        ((np.zeros((3, 4, 4)), [1, 22, 3]), "one character.*'22'"),
    ],
)
def test_bad_glyphs_are_clear_errors(glyphs, message):
    with pytest.raises(ValueError, match=message):
        make_digit_strings(5, glyphs=glyphs)


def test_glyphs_narrower_than_the_overlap_are_refused():
    with pytest.raises(ValueError, match="more than a glyph's width"):
        make_digit_strings(5, spacing=(-3, 0), glyphs=(np.ones((2, 3, 2)), [0, 1]))


def test_line_folder_reads_csv_and_text_transcriptions(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for name, height, width in (("a.png", 12, 30), ("b.png", 24, 40)):
        Image.fromarray(np.full((height, width), 200, np.uint8)).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text('file,text\na.png,hi there\nb.png,"x,y"\n')
    with pytest.raises(ValueError, match="different heights.*height="):
        load_line_folder(tmp_path)
    data = load_line_folder(tmp_path, height=12, invert=True)
    assert [image.shape for image in data.images] == [(12, 30), (12, 20)]
    assert data.target.tolist() == ["hi there", "x,y"]
    assert data.images[0].max() == 55
    (tmp_path / "lines.txt").write_text("a.png\thello world\n# a comment\nb\tsecond\n")
    X, y = load_line_folder(tmp_path, transcriptions="lines.txt", height=12, return_X_y=True)
    assert y.tolist() == ["hello world", "second"]
    (tmp_path / "bad.txt").write_text("missing.png\tnothing\n")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_line_folder(tmp_path, transcriptions="bad.txt")
