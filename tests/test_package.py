"""The shape of the package: no import cycles, persistence apart from the estimators, and every
public callable documented in numpydoc style."""

import ast
import importlib
import inspect
import json
import pkgutil
import textwrap
from pathlib import Path

import pytest

import skrnn

PACKAGE = Path(skrnn.__file__).parent
MODULES = sorted(
    ["skrnn"] + [f"skrnn.{info.name}" for info in pkgutil.iter_modules([str(PACKAGE)])]
)
PUBLIC_MODULES = [
    "skrnn",
    "skrnn.cells",
    "skrnn.datasets",
    "skrnn.distributed",
    "skrnn.exceptions",
    "skrnn.inspection",
    "skrnn.metrics",
    "skrnn.plotting",
    "skrnn.sequence",
]
ESTIMATOR_MODULES = {
    "skrnn._classifier",
    "skrnn._regressor",
    "skrnn._segmenter",
    "skrnn._generator",
    "skrnn._recognizer",
}


def _path(module: str) -> Path:
    if module == "skrnn":
        return PACKAGE / "__init__.py"
    return PACKAGE / f"{module.split('.', 1)[1]}.py"


def imports_of(module: str) -> set[str]:
    """The skrnn modules that ``module`` imports anywhere in its code, functions included."""
    found = set()
    for node in ast.walk(ast.parse(_path(module).read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . / from .x
                base = "skrnn" + (f".{node.module}" if node.module else "")
            else:
                base = node.module or ""
            # "from . import x" imports the module skrnn.x when there is one, else skrnn itself
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(name for name in names if name in MODULES and name != module)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_inside_skrnn():
    graph = {module: imports_of(module) for module in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_package_imports_the_estimators():
    importers = {module for module in MODULES if imports_of(module) & ESTIMATOR_MODULES}
    # The package exports them, the command line builds them; nothing else needs them.
    assert importers <= {"skrnn", "skrnn._cli", "skrnn._demo", "skrnn.plotting"}, importers


def test_persistence_and_its_codec_never_import_an_estimator():
    for module in ("skrnn._persistence", "skrnn._json", "skrnn._registry"):
        reached, frontier = set(), {module}
        while frontier:  # everything they import, directly or not
            reached |= frontier
            frontier = set().union(*(imports_of(m) for m in frontier)) - reached
        assert not reached & (ESTIMATOR_MODULES | {"skrnn._base", "skrnn"}), module


def test_utils_imports_nothing_else_of_the_package():
    assert imports_of("skrnn._utils") == set()


# ----------------------------------------------------------------------------- docstrings
def _returns_a_value(func) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            return True
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
    return False


def _named_parameters(func) -> list[str]:
    return [
        p.name
        for p in inspect.signature(func).parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def _section(doc: str, title: str) -> str | None:
    """The text of a numpydoc section, or None when the docstring has none."""
    heading = f"{title}\n{'-' * len(title)}\n"
    if heading not in doc:
        return None
    return doc.split(heading, 1)[1].split("\n\n\n")[0]


def _documented(doc: str, names: list[str]) -> list[str]:
    """Problems with the Parameters section of ``doc`` for the parameters ``names``."""
    if not names:
        return []
    section = _section(doc, "Parameters")
    if section is None:
        return ["no Parameters section"]
    listed = {
        part.strip()
        for line in section.splitlines()
        if " : " in line and not line.startswith(" ")
        for part in line.split(" : ")[0].split(",")
    }
    return [f"parameter {name!r} not described" for name in names if name not in listed]


def public_callables():
    """(name, callable, is_class) of every public function, class and method of skrnn."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue  # constants, and ready-made scorer objects
            if not obj.__module__.startswith("skrnn"):
                continue
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj, inspect.isclass(obj)
            if not inspect.isclass(obj):
                continue
            for attr, member in vars(obj).items():
                function = member.__func__ if isinstance(member, classmethod) else member
                if attr.startswith("_") or not inspect.isfunction(function):
                    continue
                yield f"{module_name}.{name}.{attr}", function, False


def test_public_names_of_every_public_module_are_listed_in_all():
    for module_name in PUBLIC_MODULES:
        assert hasattr(importlib.import_module(module_name), "__all__"), module_name


@pytest.mark.parametrize(
    "name, obj, is_class", list(public_callables()), ids=[c[0] for c in public_callables()]
)
def test_public_callable_has_numpydoc_sections(name, obj, is_class):
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    if is_class:
        problems = _documented(doc, _named_parameters(obj.__init__))
    else:
        problems = _documented(doc, _named_parameters(obj))
        if _returns_a_value(obj) and "Returns\n-------" not in doc and "Yields" not in doc:
            problems.append("no Returns section")
    assert not problems, f"{name}: {problems}"


# ----------------------------------------------------------------------------- estimator registry
class ShallowClassifier(skrnn.RNNImageClassifier):
    """A user's subclass: registered by being defined, saved and loaded under its own name."""


def test_model_files_name_estimators_as_they_always_have(tmp_path):
    import zipfile

    from skrnn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    path = tmp_path / "digits.skrnn"
    skrnn.RNNImageClassifier(hidden_size=4, max_epochs=1, random_state=0).fit(
        X[:60], y[:60]
    ).save(path)
    with zipfile.ZipFile(path) as archive:
        model = json.loads(archive.read("model.json"))
    # The name files written before the package's layout changed give it, so that files
    # written now load in those versions too.
    assert model["estimator"] == "skrnn.classifier.RNNImageClassifier"

    own = ShallowClassifier(hidden_size=4, max_epochs=1, random_state=0).fit(X[:60], y[:60])
    own.save(tmp_path / "own.skrnn")
    loaded = skrnn.load(tmp_path / "own.skrnn")
    assert type(loaded) is ShallowClassifier
    assert (loaded.predict(X[:20]) == own.predict(X[:20])).all()


def test_the_registry_finds_classes_by_file_public_and_own_names():
    from skrnn._registry import estimator_class, estimator_name

    assert estimator_class("skrnn.segmenter.RNNSegmenter") is skrnn.RNNSegmenter
    assert estimator_class("skrnn.RNNSegmenter") is skrnn.RNNSegmenter
    assert estimator_class("skrnn.classifier.RNNSegmenter") is None
    assert estimator_class(estimator_name(ShallowClassifier)) is ShallowClassifier
    assert estimator_name(ShallowClassifier).endswith("test_package.ShallowClassifier")
    for unknown in ("os.system", "skrnn.load", "RNNSegmenter", None, 3):
        assert estimator_class(unknown) is None
