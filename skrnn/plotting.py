"""Plots in scikit-learn's Display style. matplotlib is imported only when plotting."""

from __future__ import annotations

import numpy as np

__all__ = [
    "ImageGridDisplay",
    "ImportanceDisplay",
    "SegmentationDisplay",
    "TrainingCurveDisplay",
    "plot_image_grid",
]


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


class TrainingCurveDisplay:
    """Training curve of a fitted skrnn estimator: losses and validation score per epoch.

    Create it with :meth:`from_estimator`; its attributes follow scikit-learn's displays.

    Parameters
    ----------
    history : list of dict
        Per-epoch records, as in an estimator's ``history_``.
    estimator_name : str, default=None
        The estimator's name, for the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        The loss axes.
    score_ax_ : matplotlib Axes or None
        The twin axes of the validation score, when the history has one.
    figure_ : matplotlib Figure
    lines_ : dict of str to matplotlib Line2D
        One line per plotted history key.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn.datasets import load_digits_images
    >>> from skrnn.plotting import TrainingCurveDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = RNNImageClassifier(hidden_size=16, max_epochs=2, random_state=0).fit(X, y)
    >>> sorted(TrainingCurveDisplay.from_estimator(clf).lines_)
    ['train_loss']
    """

    def __init__(self, history, estimator_name=None):
        self.history = history
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the ``history_`` of a fitted estimator.

        Parameters
        ----------
        estimator : fitted skrnn estimator
            Any estimator with a ``history_``.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : TrainingCurveDisplay
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator, "history_")
        return cls(estimator.history_, type(estimator).__name__).plot(ax=ax)

    def plot(self, *, ax=None):
        """Draw the curves: losses on ``ax``, validation scores on a twin axis.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.

        Returns
        -------
        display : TrainingCurveDisplay
            ``self``, with the drawn artists as attributes.
        """
        ax = _axes(ax)
        epochs = np.array([record["epoch"] for record in self.history])
        self.lines_ = {}
        for key, style in (("train_loss", "-"), ("valid_loss", "--")):
            if all(key in record for record in self.history):
                values = [record[key] for record in self.history]
                (self.lines_[key],) = ax.plot(epochs, values, style, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        self.score_ax_ = None
        score_keys = [k for k in self.history[-1] if k.startswith("valid_") and k != "valid_loss"]
        score_keys = [k for k in score_keys if not k.endswith(("_best", "_count"))]
        if score_keys:
            self.score_ax_ = ax.twinx()
            for key in score_keys:
                values = [record.get(key, np.nan) for record in self.history]
                (self.lines_[key],) = self.score_ax_.plot(epochs, values, ":", label=key)
            self.score_ax_.set_ylabel("validation score")
        handles = list(self.lines_.values())
        ax.legend(handles, [h.get_label() for h in handles], loc="best")
        ax.set_title(f"Training curve{f' of {self.estimator_name}' if self.estimator_name else ''}")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self


def _label_colormap(n_labels: int):
    """A qualitative colormap for label masks: black background, then tab10 colours."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    tab = colormaps["tab10"].colors
    colors = ["black"] + [tab[i % len(tab)] for i in range(max(n_labels - 1, 1))]
    return ListedColormap(colors[: max(n_labels, 2)])


def _image_for_imshow(image):
    """A 2-D grey image or an RGB(A) image for ``imshow``, from (H, W), (H, W, 1) or (H, W, C)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        image = image.mean(axis=2)
    if image.ndim == 3 and image.dtype != np.uint8:
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image, float)
    return image


def _grid(n_rows, n_cols, axes, figsize):
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False)
    axes = np.asarray(axes, dtype=object)
    if axes.size != n_rows * n_cols:
        raise ValueError(
            f"axes must hold {n_rows * n_cols} Axes ({n_rows} rows x {n_cols} columns), "
            f"got {axes.size}."
        )
    return axes.reshape(n_rows, n_cols)


class SegmentationDisplay:
    """Images with their true and predicted label masks, one image per row.

    Create it with :meth:`from_predictions` or :meth:`from_estimator`; its attributes follow
    scikit-learn's displays.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        The images.
    masks_true : array-like of shape (n, H, W) or None
        The true label masks; None leaves out their column.
    masks_pred : array-like of shape (n, H, W)
        The predicted label masks.
    labels : array-like, default=None
        The class labels, in colour order; by default those found in the masks.
    label_names : list of str, default=None
        Names for the legend, one per label.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes, shape (n_shown, n_columns)
        One row per image: image, true mask (when given), predicted mask, and overlay.
    ax_ : matplotlib Axes
        The first Axes (``axes_[0, 0]``).
    figure_ : matplotlib Figure
    images_ : ndarray of matplotlib AxesImage
        The drawn images, in the shape of ``axes_`` (overlays hold the prediction layer).
    legend_ : matplotlib Legend or None

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skrnn.plotting import SegmentationDisplay
    >>> images = np.random.default_rng(0).random((2, 8, 8))
    >>> masks = (images > 0.5).astype(int)
    >>> display = SegmentationDisplay.from_predictions(images, masks, 1 - masks)
    >>> display.axes_.shape
    (2, 4)
    """

    def __init__(self, images, masks_true, masks_pred, *, labels=None, label_names=None):
        self.images = images
        self.masks_true = masks_true
        self.masks_pred = masks_pred
        self.labels = labels
        self.label_names = label_names

    @classmethod
    def from_predictions(
        cls,
        images,
        masks_true,
        masks_pred,
        *,
        labels=None,
        label_names=None,
        max_images: int = 5,
        overlay: bool = True,
        alpha: float = 0.5,
        axes=None,
    ):
        """Plot images beside their true and predicted masks.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            The images.
        masks_true : array-like of shape (n, H, W) or None
            None leaves out the column of true masks.
        masks_pred : array-like of shape (n, H, W)
            The predicted label masks.
        labels : array-like, default=None
            The class labels, in colour order; by default those found in the masks.
        label_names : list of str, default=None
            Names for the legend, one per label.
        max_images : int, default=5
            How many of the images to show (the first ones).
        overlay : bool, default=True
            Add a column with the predicted mask laid over the image.
        alpha : float, default=0.5
            Opacity of the overlaid mask.
        axes : array of matplotlib Axes, default=None
            ``max_images`` rows of Axes, one column per panel; a new figure when None.

        Returns
        -------
        display : SegmentationDisplay
        """
        display = cls(images, masks_true, masks_pred, labels=labels, label_names=label_names)
        return display.plot(max_images=max_images, overlay=overlay, alpha=alpha, axes=axes)

    @classmethod
    def from_estimator(cls, estimator, images, masks_true=None, **kwargs):
        """Predict masks with a fitted segmenter and plot them beside ``masks_true``.

        Only the images shown are predicted.

        Parameters
        ----------
        estimator : fitted RNNSegmenter
            The segmenter (or a pipeline ending in one).
        images : array-like of shape (n, H, W) or (n, H, W, C)
            The images.
        masks_true : array-like of shape (n, H, W), default=None
            Their true masks; None leaves out that column.
        **kwargs
            The keyword arguments of :meth:`from_predictions`.

        Returns
        -------
        display : SegmentationDisplay
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
        n_shown = min(kwargs.get("max_images", 5), len(images))
        images = images[:n_shown]
        masks_true = None if masks_true is None else np.asarray(masks_true)[:n_shown]
        if kwargs.get("labels") is None and hasattr(estimator, "classes_"):
            kwargs["labels"] = estimator.classes_
        return cls.from_predictions(images, masks_true, estimator.predict(images), **kwargs)

    def plot(self, *, max_images: int = 5, overlay: bool = True, alpha: float = 0.5, axes=None):
        """Draw one row per image: the image, the true and predicted masks, the overlay.

        Parameters
        ----------
        max_images : int, default=5
            How many of the images to show (the first ones).
        overlay : bool, default=True
            Add a column with the predicted mask laid over the image.
        alpha : float, default=0.5
            Opacity of the overlaid mask.
        axes : array of matplotlib Axes, default=None
            ``max_images`` rows of Axes, one column per panel; a new figure when None.

        Returns
        -------
        display : SegmentationDisplay
            ``self``, with the drawn artists as attributes.
        """
        import matplotlib.pyplot as plt

        masks_pred = np.asarray(self.masks_pred)
        masks_true = None if self.masks_true is None else np.asarray(self.masks_true)
        if masks_true is not None and masks_true.shape != masks_pred.shape:
            raise ValueError(
                f"masks_true and masks_pred must have the same shape, got {masks_true.shape} "
                f"and {masks_pred.shape}."
            )
        if len(self.images) != len(masks_pred):
            raise ValueError(
                f"images and masks_pred must hold as many images, got {len(self.images)} and "
                f"{len(masks_pred)}."
            )
        found = [masks_pred] if masks_true is None else [masks_true, masks_pred]
        labels = np.unique(np.concatenate([m.ravel() for m in found]))
        labels = np.asarray(self.labels) if self.labels is not None else labels
        colormap = _label_colormap(len(labels))

        def colour_index(mask):
            # Labels become colour positions, so any label values (e.g. 0, 5, 255) work.
            return np.searchsorted(labels, mask).clip(0, len(labels) - 1)

        titles = ["image"] + (["true mask"] if masks_true is not None else []) + ["predicted"]
        titles += ["overlay"] if overlay else []
        n_shown = min(max_images, len(masks_pred))
        axes = _grid(n_shown, len(titles), axes, (2.2 * len(titles), 2.2 * n_shown))
        drawn = np.empty(axes.shape, dtype=object)
        mask_style = dict(cmap=colormap, vmin=0, vmax=len(labels) - 1, interpolation="nearest")
        for row in range(n_shown):
            image = _image_for_imshow(self.images[row])
            panels = [("image", image)]
            if masks_true is not None:
                panels.append(("mask", masks_true[row]))
            panels.append(("mask", masks_pred[row]))
            if overlay:
                panels.append(("overlay", masks_pred[row]))
            for column, (kind, values) in enumerate(panels):
                ax = axes[row, column]
                if kind == "image":
                    drawn[row, column] = ax.imshow(values, cmap="gray")
                elif kind == "mask":
                    drawn[row, column] = ax.imshow(colour_index(values), **mask_style)
                else:
                    ax.imshow(image, cmap="gray")
                    drawn[row, column] = ax.imshow(colour_index(values), alpha=alpha, **mask_style)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(titles[column])
        figure = axes[0, 0].figure
        names = self.label_names if self.label_names is not None else [str(k) for k in labels]
        handles = [plt.Rectangle((0, 0), 1, 1, color=colormap(i)) for i in range(len(labels))]
        self.legend_ = figure.legend(handles, list(names), loc="lower center", ncol=len(labels))
        self.axes_ = axes
        self.ax_ = axes[0, 0]
        self.figure_ = figure
        self.images_ = drawn
        return self


class ImageGridDisplay:
    """A grid of images, for instance samples of :class:`skrnn.RNNImageGenerator`.

    Usually made with :func:`plot_image_grid`.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        Grey, single-channel or RGB images.
    labels : array-like of shape (n,), default=None
        A title per image.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes, shape (n_rows, n_cols)
    ax_ : matplotlib Axes
        The first Axes.
    figure_ : matplotlib Figure
    images_ : list of matplotlib AxesImage
        One per image drawn.
    """

    def __init__(self, images, labels=None):
        self.images = images
        self.labels = labels

    def plot(self, *, n_cols=None, cmap="gray", axes=None, figsize=None):
        """Draw the images in a grid, each with its title.

        Parameters
        ----------
        n_cols : int, default=None
            Images per row; up to 8 when None.
        cmap : str, default="gray"
            Colour map of single-channel images.
        axes : array of matplotlib Axes, default=None
            Where to draw; a new figure when None.
        figsize : tuple of float, default=None
            Size of a new figure, in inches.

        Returns
        -------
        display : ImageGridDisplay
            ``self``, with the drawn artists as attributes.
        """
        n_images = len(self.images)
        if n_images == 0:
            raise ValueError("images is empty; there is nothing to plot.")
        if self.labels is not None and len(self.labels) != n_images:
            raise ValueError(
                f"labels must have one entry per image: got {len(self.labels)} labels for "
                f"{n_images} images."
            )
        n_cols = n_cols or min(n_images, 8)
        n_rows = -(-n_images // n_cols)
        figsize = figsize or (1.4 * n_cols, 1.4 * n_rows + (0.3 if self.labels is not None else 0))
        axes = _grid(n_rows, n_cols, axes, figsize)
        self.images_ = []
        for index, ax in enumerate(axes.ravel()):
            ax.set_xticks([])
            ax.set_yticks([])
            if index >= n_images:
                ax.set_axis_off()
                continue
            self.images_.append(ax.imshow(_image_for_imshow(self.images[index]), cmap=cmap))
            if self.labels is not None:
                ax.set_title(str(self.labels[index]), fontsize=9)
        self.axes_ = axes
        self.ax_ = axes[0, 0]
        self.figure_ = self.ax_.figure
        return self


def plot_image_grid(images, labels=None, *, n_cols=None, cmap="gray", axes=None, figsize=None):
    """Show images in a grid, with an optional title per image.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        Grey, single-channel or RGB images (e.g. ``generator.sample(16)``).
    labels : array-like of shape (n,), default=None
        A title per image.
    n_cols : int, default=None
        Images per row (at most 8 by default).
    cmap : str, default="gray"
        Colormap of grey images.
    axes : array of matplotlib Axes, default=None
        Axes to draw on, at least one per image; a new figure when None.
    figsize : tuple of float, default=None

    Returns
    -------
    display : ImageGridDisplay
        With ``axes_``, ``ax_``, ``figure_`` and ``images_``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrnn.datasets import load_digits_images
    >>> from skrnn.plotting import plot_image_grid
    >>> X, y = load_digits_images(return_X_y=True)
    >>> display = plot_image_grid(X[:10], y[:10], n_cols=5)
    >>> display.axes_.shape, len(display.images_)
    ((2, 5), 10)
    """
    return ImageGridDisplay(images, labels).plot(
        n_cols=n_cols, cmap=cmap, axes=axes, figsize=figsize
    )


class ImportanceDisplay:
    """Images beside their importance maps, one image per row: image, map, overlay.

    Create it with :meth:`from_estimator` (which calls
    :func:`skrnn.inspection.importance_map`) or :meth:`from_maps`; its attributes follow
    scikit-learn's displays.

    Parameters
    ----------
    images : array-like of shape (n, H, W) or (n, H, W, C)
        The images.
    maps : array-like of shape (n, H, W)
        Their importance maps (signed).
    titles : list of str, default=None
        A title per image (e.g. its predicted label), shown beside the first panel.

    Attributes
    ----------
    axes_ : ndarray of matplotlib Axes, shape (n_shown, 3)
        One row per image: image, map, overlay.
    ax_ : matplotlib Axes
        The first Axes (``axes_[0, 0]``).
    figure_ : matplotlib Figure
    images_ : ndarray of matplotlib AxesImage
        The drawn images, in the shape of ``axes_`` (overlays hold the map layer).
    colorbar_ : matplotlib Colorbar
        The scale of the maps.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skrnn.plotting import ImportanceDisplay
    >>> images = np.random.default_rng(0).random((2, 8, 8))
    >>> display = ImportanceDisplay.from_maps(images, images - 0.5)
    >>> display.axes_.shape
    (2, 3)
    """

    def __init__(self, images, maps, *, titles=None):
        self.images = images
        self.maps = maps
        self.titles = titles

    @classmethod
    def from_maps(
        cls, images, maps, *, titles=None, max_images: int = 5, alpha: float = 0.6, axes=None
    ):
        """Plot images beside importance maps computed elsewhere.

        Parameters
        ----------
        images : array-like of shape (n, H, W) or (n, H, W, C)
            The images.
        maps : array-like of shape (n, H, W)
            Their importance maps.
        titles : list of str, default=None
            A title per image.
        max_images : int, default=5
            How many of the images to show (the first ones).
        alpha : float, default=0.6
            Opacity of the overlaid map.
        axes : array of matplotlib Axes, default=None
            ``max_images`` rows of three Axes; a new figure when None.

        Returns
        -------
        display : ImportanceDisplay
        """
        return cls(images, maps, titles=titles).plot(max_images=max_images, alpha=alpha, axes=axes)

    @classmethod
    def from_estimator(
        cls,
        estimator,
        images,
        target=None,
        *,
        method: str = "occlusion",
        max_images: int = 5,
        alpha: float = 0.6,
        axes=None,
        **kwargs,
    ):
        """Compute importance maps of a fitted estimator and plot them beside the images.

        Only the images shown are explained.

        Parameters
        ----------
        estimator : fitted RNNImageClassifier, RNNImageRegressor or RNNSegmenter
            The estimator to explain.
        images : array-like
            Images, as the estimator's ``predict`` takes them.
        target : label, int or None, default=None
            What to explain, as in :func:`skrnn.inspection.importance_map`; None explains
            each image's prediction.
        method : {"occlusion", "integrated_gradients"}, default="occlusion"
            The attribution method.
        max_images : int, default=5
            How many of the images to show (the first ones).
        alpha : float, default=0.6
            Opacity of the overlaid map.
        axes : array of matplotlib Axes, default=None
            ``max_images`` rows of three Axes; a new figure when None.
        **kwargs
            Further keyword arguments of :func:`skrnn.inspection.importance_map`.

        Returns
        -------
        display : ImportanceDisplay
        """
        from .inspection import importance_map

        shown = images[: min(max_images, len(images))]
        maps = importance_map(estimator, shown, target, method=method, **kwargs)
        titles = None
        if hasattr(estimator, "classes_") and np.ndim(estimator.predict(shown[:1])) == 1:
            titles = [str(label) for label in estimator.predict(shown)]
        display = cls(shown, maps, titles=titles)
        return display.plot(max_images=max_images, alpha=alpha, axes=axes)

    def plot(self, *, max_images: int = 5, alpha: float = 0.6, axes=None):
        """Draw one row per image: the image, its map and the map laid over the image.

        The maps share one symmetric colour scale (red raised the explained output, blue
        lowered it); the overlay shows the magnitude.

        Parameters
        ----------
        max_images : int, default=5
            How many of the images to show (the first ones).
        alpha : float, default=0.6
            Opacity of the overlaid map.
        axes : array of matplotlib Axes, default=None
            ``max_images`` rows of three Axes; a new figure when None.

        Returns
        -------
        display : ImportanceDisplay
            ``self``, with the drawn artists as attributes.
        """
        maps = np.asarray(self.maps, dtype=float)
        if maps.ndim != 3 or len(maps) != len(self.images):
            raise ValueError(
                f"maps must hold one (H, W) map per image, shape ({len(self.images)}, H, W); "
                f"got shape {maps.shape}."
            )
        n_shown = min(max_images, len(maps))
        axes = _grid(n_shown, 3, axes, (6.6, 2.2 * n_shown))
        drawn = np.empty(axes.shape, dtype=object)
        limit = float(np.abs(maps[:n_shown]).max()) or 1.0
        for row in range(n_shown):
            image = _image_for_imshow(self.images[row])
            axes[row, 0].imshow(image, cmap="gray")
            drawn[row, 0] = axes[row, 0].images[-1]
            drawn[row, 1] = axes[row, 1].imshow(
                maps[row], cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest"
            )
            axes[row, 2].imshow(image, cmap="gray")
            drawn[row, 2] = axes[row, 2].imshow(
                np.abs(maps[row]),
                cmap="inferno",
                vmin=0,
                vmax=limit,
                alpha=alpha,
                interpolation="nearest",
            )
            for column, ax in enumerate(axes[row]):
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(("image", "importance", "overlay")[column])
            if self.titles is not None:
                axes[row, 0].set_ylabel(str(self.titles[row]))
        figure = axes[0, 0].figure
        self.colorbar_ = figure.colorbar(drawn[0, 1], ax=list(axes.ravel()), shrink=0.8)
        self.axes_ = axes
        self.ax_ = axes[0, 0]
        self.figure_ = figure
        self.images_ = drawn
        return self
