"""The registry of estimator classes that model files may name.

Every subclass of the skrnn base estimator registers itself here when its class is defined, so
:func:`skrnn.load` finds the class a model file names without importing any module: only classes
that are already defined can be built from a file. skrnn's own estimators are registered under
their public names (``skrnn.RNNImageClassifier``), other subclasses under
``module.QualifiedName``.
"""

from __future__ import annotations

_ESTIMATORS: dict[str, type] = {}


def estimator_name(cls: type) -> str:
    """The name under which ``cls`` is registered and written into model files."""
    if cls.__module__.split(".")[0] == "skrnn":
        return f"skrnn.{cls.__qualname__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def register_estimator(cls: type) -> type:
    """Make ``cls`` loadable from model files under :func:`estimator_name`; returns ``cls``."""
    _ESTIMATORS[estimator_name(cls)] = cls
    return cls


def estimator_class(name: object) -> type | None:
    """The registered class of that name, or None.

    Files written before skrnn's estimators moved into private modules name them by their
    old module (``skrnn.classifier.RNNImageClassifier``); those names still find them.
    """
    if not isinstance(name, str):
        return None
    if name in _ESTIMATORS:
        return _ESTIMATORS[name]
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "skrnn":
        return _ESTIMATORS.get(f"skrnn.{parts[2]}")
    return None
