"""The registry of estimator classes that model files may name.

Every subclass of the skrnn base estimator registers itself here when its class is defined, so
:func:`skrnn.load` finds the class a model file names without importing any module: only classes
that are already defined can be built from a file. Other subclasses are registered under
``module.QualifiedName``. skrnn's own estimators keep the names model files have always given
them (``skrnn.classifier.RNNImageClassifier``, from before the estimators moved into private
modules), so that files written now still load in earlier versions; their public names
(``skrnn.RNNImageClassifier``) find them too.
"""

from __future__ import annotations

_ESTIMATORS: dict[str, type] = {}

# The names model files give skrnn's own estimators: the format does not change with the
# package's layout.
_FILE_NAMES = {
    "RNNImageClassifier": "skrnn.classifier.RNNImageClassifier",
    "RNNImageRegressor": "skrnn.regressor.RNNImageRegressor",
    "RNNSegmenter": "skrnn.segmenter.RNNSegmenter",
    "RNNImageGenerator": "skrnn.generator.RNNImageGenerator",
    "RNNSequenceRecognizer": "skrnn.recognizer.RNNSequenceRecognizer",
}


def estimator_name(cls: type) -> str:
    """The name under which ``cls`` is registered and written into model files."""
    if cls.__module__.split(".")[0] == "skrnn" and cls.__qualname__ in _FILE_NAMES:
        return _FILE_NAMES[cls.__qualname__]
    return f"{cls.__module__}.{cls.__qualname__}"


def register_estimator(cls: type) -> type:
    """Make ``cls`` loadable from model files under :func:`estimator_name`; returns ``cls``."""
    _ESTIMATORS[estimator_name(cls)] = cls
    return cls


def estimator_class(name: object) -> type | None:
    """The registered class of that name (a file name or a public name), or None."""
    if not isinstance(name, str):
        return None
    if name in _ESTIMATORS:
        return _ESTIMATORS[name]
    public = name.split(".")
    if len(public) == 2 and public[0] == "skrnn" and public[1] in _FILE_NAMES:
        return _ESTIMATORS.get(_FILE_NAMES[public[1]])
    return None
