"""Class labels: what the classifier, the segmenter and the generator share.

Learning ``classes_`` (from the targets, or from the ``classes`` a first ``partial_fit``
announces), refusing labels that are not among them and encoding labels as class indices
(:class:`ClassLabelsMixin`, all three), and turning ``class_weight`` into one loss weight per
class and checking the ``classes`` of ``partial_fit`` (:class:`LabelledTargetsMixin`, the
classifier and the segmenter, whose targets are labels) are written here once.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils._param_validation import StrOptions


class ClassLabelsMixin:
    """Class labels of any type, learnt in ``fit`` and checked everywhere after."""

    def _learn_classes(self, labels, classes=None) -> None:
        """Set ``classes_``: the sorted distinct ``labels``, or the declared ``classes``."""
        self.classes_ = np.unique(np.asarray(labels if classes is None else classes))

    def _check_known_labels(self, labels) -> None:
        """Refuse labels that are not among ``classes_``: no prediction could ever match them."""
        unknown = np.setdiff1d(np.unique(labels), self.classes_)
        if unknown.size:
            raise ValueError(
                f"y contains labels {unknown.tolist()[:10]} that are not among the classes "
                f"{self.classes_.tolist()} this {type(self).__name__} was fitted with."
            )

    def _encode_labels(self, labels) -> np.ndarray:
        """The index in ``classes_`` of every label, after :meth:`_check_known_labels`."""
        self._check_known_labels(labels)
        return np.searchsorted(self.classes_, labels)

    def _check_fitted(self) -> None:
        """``classes_``, where there is one: the sorted distinct labels, as ``np.unique`` makes
        them (of a saved model; see :meth:`BaseRNNEstimator._check_fitted`)."""
        super()._check_fitted()
        if not hasattr(self, "classes_"):
            return
        classes = self.classes_
        if (
            not isinstance(classes, np.ndarray)
            or classes.ndim != 1
            or not len(classes)
            or (classes.dtype.kind == "f" and not np.isfinite(classes).all())
            or not np.array_equal(np.unique(classes), classes)
        ):
            raise ValueError(
                f"classes_ should be a 1-D array of sorted distinct labels, got {classes!r:.100}."
            )


class LabelledTargetsMixin(ClassLabelsMixin):
    """Targets that are class labels: ``class_weight`` and ``partial_fit(classes=...)``."""

    _class_weight_constraint: list = [dict, StrOptions({"balanced", "balanced_sqrt"}), None]

    def _require_two_classes(self, *, noun: str = "class", context: str = "") -> None:
        """Refuse to fit fewer than two classes; ``context`` ends the message."""
        if len(self.classes_) >= 2:
            return
        found = f"only {noun} {self.classes_.tolist()[0]!r}" if len(self.classes_) else "no label"
        raise ValueError(
            f"{type(self).__name__} needs at least two classes; y has {found}{context}."
        )

    def _check_fitted(self) -> None:
        """At least two ``classes_``, and one loss weight per class where ``class_weight``
        asks for them (of a saved model; see :meth:`BaseRNNEstimator._check_fitted`)."""
        super()._check_fitted()
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(f"classes_ should hold at least two classes, got {n_classes}.")
        weights = self._class_weight
        if self.class_weight is None:
            valid = weights is None
        elif isinstance(self.class_weight, dict):
            valid = weights == self._class_weights(None)
        else:
            valid = (
                isinstance(weights, list)
                and len(weights) == n_classes
                and all(isinstance(w, float) and np.isfinite(w) and w > 0 for w in weights)
            )
        if not valid:
            raise ValueError(
                f"_class_weight should be the loss weight of each of the {n_classes} classes "
                f"that class_weight={self.class_weight!r:.60} gives, got {weights!r:.100}."
            )

    def _learn_targets(self, targets, weights) -> None:
        self._class_weight = self._class_weights(targets, weights)

    def _continue_targets(self, targets, weights) -> None:
        # class_weight is a parameter of training: a warm start weighs this fit's targets.
        self._class_weight = self._class_weights(targets, weights)

    def _class_weights(self, encoded, sample_weight=None) -> list[float] | None:
        """One loss weight per class from ``class_weight``, or None.

        ``encoded`` holds the class index of every training target; negative entries (ignored
        pixels) do not count, and with ``sample_weight`` (one weight per sample) each target
        counts with its sample's weight, so samples of weight 0 do not count either.
        ``"balanced"`` gives each class present ``n / (k * n_c)`` for ``n`` targets in ``k``
        classes, ``n_c`` of them in the class, as
        :func:`sklearn.utils.class_weight.compute_class_weight` does, and ``"balanced_sqrt"``
        the square root of that; absent classes get 1.
        """
        if self.class_weight is None:
            return None
        n_classes = len(self.classes_)
        if isinstance(self.class_weight, str):  # "balanced" or "balanced_sqrt"
            labelled = encoded >= 0
            if sample_weight is not None:
                per_target = np.asarray(sample_weight, dtype=float).reshape(
                    (-1,) + (1,) * (encoded.ndim - 1)
                )
                per_target = np.broadcast_to(per_target, encoded.shape)[labelled]
            else:
                per_target = None
            counts = np.bincount(encoded[labelled], weights=per_target, minlength=n_classes)
            present = counts > 0
            weights = np.ones(n_classes)
            weights[present] = counts.sum() / (present.sum() * counts[present])
            if self.class_weight == "balanced_sqrt":
                weights = np.sqrt(weights)
            return weights.tolist()
        known = set(self.classes_.tolist())
        unknown = [label for label in self.class_weight if label not in known]
        if unknown:
            raise ValueError(
                f"class_weight names classes {sorted(unknown, key=str)} that are not among the "
                f"labels of y; the classes are {self.classes_.tolist()}."
            )
        return [float(self.class_weight.get(label, 1.0)) for label in self.classes_.tolist()]

    def _partial_fit_classes(self, classes):
        """The ``classes`` of a ``partial_fit`` call as ``_fit`` takes them: required on the
        first call, None after it (where they must match ``classes_`` if given)."""
        if not self._is_fitted():
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit, listing every "
                    "class that will appear in y."
                )
            return classes
        if classes is not None and not np.array_equal(
            np.unique(np.asarray(classes)), self.classes_
        ):
            raise ValueError(
                f"classes={np.asarray(classes).tolist()} differs from the classes "
                f"{self.classes_.tolist()} of the first call to partial_fit."
            )
        return None
