"""The Python examples of the README and of every documentation page run, as a reader would.

The blocks of one file (the README, or one page under ``docs/``) run in order, in one fresh
namespace. Sizes are shrunk so that they all run in well under a minute: the estimators'
defaults become tiny (one epoch, a few units) and the bundled data sets smaller. A block whose
first line is a ``# skip-test`` comment (one that needs a cluster or the network) is skipped.
"""

import inspect
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import skrnn
import skrnn.cells
import skrnn.datasets

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# What the docs build writes (API stubs, the gallery) and its templates are not pages.
BUILT = ("_build", "_templates", "generated", "auto_examples")
DOC_PAGES = sorted(
    path
    for pattern in ("*.md", "*.rst")
    for path in DOCS.rglob(pattern)
    if not set(path.relative_to(DOCS).parts) & set(BUILT)
)
TINY_DEFAULTS = {"max_epochs": 1, "hidden_size": 6, "num_layers": 1, "head": None}


def python_blocks(text: str) -> list[str]:
    """The ```` ```python ```` blocks of Markdown and ``.. code-block:: python`` blocks of rST."""
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    for match in re.finditer(
        r"^( *)\.\. code-block:: python\n((?:\1 +:.*\n)*)\n((?:\1 +.*\n|\n)+)",
        text,
        flags=re.MULTILINE,
    ):
        blocks.append(textwrap.dedent(match.group(3)))
    return blocks


def run_blocks(path: Path, namespace: dict) -> int:
    """Run the Python blocks of ``path`` in order in ``namespace``; how many ran."""
    ran = 0
    for index, block in enumerate(python_blocks(path.read_text())):
        if block.lstrip().startswith("# skip-test"):
            continue
        name = f"{path.relative_to(ROOT)} python block {index + 1}"
        exec(compile(block, name, "exec"), namespace)
        ran += 1
    return ran


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


def test_the_rst_code_blocks_are_found_too():
    text = "Intro\n\n.. code-block:: python\n   :caption: x\n\n   a = 1\n   if a:\n       b = 2\n"
    text += "\nEnd\n"
    assert python_blocks(text) == ["a = 1\nif a:\n    b = 2\n\n"]


def test_the_docs_have_a_page_for_every_topic():
    guide = DOCS / "user_guide"
    pages = {path.stem for path in guide.glob("*.md")}
    for page in (
        "classify", "regress", "segment", "generate", "recognize", "compose", "own_images",
        "plugins", "persistence", "faults", "speed", "large_data", "export_inspect",
    ):  # fmt: skip
        assert page in pages
        assert page in (guide / "index.md").read_text(), f"{page} is not in the toctree"
    text = "".join(path.read_text() for path in DOC_PAGES)
    for heading in ("## Image folders", "# Command line", "## Dask", "# Data larger"):
        assert heading in text
    assert sum(len(python_blocks(path.read_text())) for path in DOC_PAGES) >= 20
    readme = README.read_text()
    assert "make docs" in readme and "docs/user_guide/index.md" in readme


def test_readme_python_blocks_run_in_order(small_world):
    namespace = {"__name__": "readme"}
    assert run_blocks(README, namespace) >= 1
    assert set(namespace["search"].best_params_) == {"cell"}
    assert (small_world / "shapes.skrnn").stat().st_size > 1000


PAGES_WITH_CODE = [path for path in DOC_PAGES if python_blocks(path.read_text())]


@pytest.mark.parametrize(
    "page", PAGES_WITH_CODE, ids=[str(p.relative_to(DOCS)) for p in PAGES_WITH_CODE]
)
def test_docs_page_python_blocks_run_in_order(small_world, page):
    namespace = {"__name__": "docs"}
    assert run_blocks(page, namespace) >= 1
    if page.name == "own_images.md":
        assert (small_world / "pets.png").stat().st_size > 1000  # the grid block saved its figure
    if page.name == "large_data.md":
        assert namespace["clf_disk"].n_features_in_ == 28 * 28
