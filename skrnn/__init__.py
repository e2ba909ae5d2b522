"""skrnn: recurrent neural networks over images as scikit-learn estimators."""

from ._classifier import RNNImageClassifier
from ._export import export_onnx
from ._generator import RNNImageGenerator
from ._persistence import load
from ._recognizer import RNNSequenceRecognizer
from ._regressor import RNNImageRegressor
from ._segmenter import RNNSegmenter
from ._version import __version__
from .cells import get_cell, list_cells, register_cell
from .sequence import ImageToSequence

__all__ = [
    "ImageToSequence",
    "RNNImageClassifier",
    "RNNImageGenerator",
    "RNNImageRegressor",
    "RNNSegmenter",
    "export_onnx",
    "RNNSequenceRecognizer",
    "get_cell",
    "load",
    "list_cells",
    "register_cell",
    "__version__",
]
