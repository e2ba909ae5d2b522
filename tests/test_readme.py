"""The README's Python examples run, in order, in one namespace, as a reader would run them.

Sizes are shrunk so that the whole README runs in well under a minute: the estimators'
defaults become tiny (one epoch, a few units) and the bundled data sets smaller. A block whose
first line is a ``# skip-test`` comment (one that needs a cluster or the network) is skipped.
"""

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import skrnn
import skrnn.cells
import skrnn.datasets

README = Path(__file__).resolve().parents[1] / "README.md"
TINY_DEFAULTS = {"max_epochs": 1, "hidden_size": 6, "num_layers": 1, "head": None}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def shrink_defaults(monkeypatch, cls):
    """Give ``cls.__init__`` tiny defaults, which sklearn's ``get_params`` and ``clone`` see."""
    init = cls.__init__
    names = [
        name
        for name, parameter in inspect.signature(init).parameters.items()
        if parameter.default is not inspect.Parameter.empty
        and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    defaults = [
        TINY_DEFAULTS.get(name, value) for name, value in zip(names, init.__defaults__, strict=True)
    ]
    monkeypatch.setattr(init, "__defaults__", tuple(defaults))


@pytest.fixture
def small_world(monkeypatch, tmp_path):
    """Tiny estimators and data, a scratch folder with the files the README reads."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    Image = pytest.importorskip("PIL.Image")
    for cls in (
        skrnn.RNNImageClassifier,
        skrnn.RNNImageRegressor,
        skrnn.RNNSegmenter,
        skrnn.RNNImageGenerator,
        skrnn.RNNSequenceRecognizer,
    ):
        shrink_defaults(monkeypatch, cls)

    load_digits_images, make_shapes = skrnn.datasets.load_digits_images, skrnn.datasets.make_shapes

    def few_digits(**kwargs):
        X, y = load_digits_images(return_X_y=True)
        return X[:240], y[:240]

    def few_shapes(n_samples=100, **kwargs):
        return make_shapes(min(n_samples, 24), **{**kwargs, "image_size": 16})

    monkeypatch.setattr(skrnn.datasets, "load_digits_images", few_digits)
    monkeypatch.setattr(skrnn.datasets, "make_shapes", few_shapes)
    make_digit_strings = skrnn.datasets.make_digit_strings

    def few_lines(n_samples=1000, **kwargs):
        return make_digit_strings(min(n_samples, 40), **kwargs)

    monkeypatch.setattr(skrnn.datasets, "make_digit_strings", few_lines)
    # Cells registered by the README stay out of the other tests.
    monkeypatch.setattr(skrnn.cells, "_CELLS", dict(skrnn.cells._CELLS))

    rng = np.random.default_rng(0)
    for name, low in (("cat", 0), ("dog", 120)):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(low, low + 130, (20, 24)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "pets" / name / f"{i}.png")
    for folder in ("images", "masks"):
        (tmp_path / "scans" / folder).mkdir(parents=True)
    for i in range(3):
        mask = np.zeros((16, 16), dtype=np.uint8)
        mask[4:10, 3 : 6 + i] = 1
        Image.fromarray(mask * 200).save(tmp_path / "scans" / "images" / f"s{i}.png")
        Image.fromarray(mask).save(tmp_path / "scans" / "masks" / f"s{i}.png")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    import matplotlib.pyplot as plt

    plt.close("all")


def test_readme_has_examples_for_every_topic():
    text = README.read_text()
    for heading in ("## Image folders", "## Command line", "## Plots", "## Dask", "## Data larger"):
        assert heading in text
    assert len(python_blocks(text)) >= 8


def test_readme_python_blocks_run_in_order(small_world):
    namespace = {"__name__": "readme"}
    ran = 0
    for index, block in enumerate(python_blocks(README.read_text())):
        if block.lstrip().startswith("# skip-test"):
            continue
        code = compile(block, f"README.md python block {index + 1}", "exec")
        exec(code, namespace)
        ran += 1
    assert ran >= 8
    assert (small_world / "pets.png").stat().st_size > 1000  # the Plots block saved its figure
    assert namespace["clf_disk"].n_features_in_ == 28 * 28
