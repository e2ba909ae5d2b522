"""skrnn: recurrent neural networks over images as scikit-learn estimators."""

from .cells import get_cell, list_cells, register_cell
from .classifier import RNNImageClassifier
from .generator import RNNImageGenerator
from .persistence import load
from .regressor import RNNImageRegressor
from .segmenter import RNNSegmenter
from .sequence import ImageToSequence

__version__ = "0.1.0"

__all__ = [
    "ImageToSequence",
    "RNNImageClassifier",
    "RNNImageGenerator",
    "RNNImageRegressor",
    "RNNSegmenter",
    "get_cell",
    "load",
    "list_cells",
    "register_cell",
    "__version__",
]
