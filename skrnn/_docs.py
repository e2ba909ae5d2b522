"""Parameter descriptions written once and put into every estimator's docstring.

An estimator's class docstring holds a ``{parameters}`` slot under its ``Parameters`` heading,
and :func:`fill_parameter_docs` fills it with one entry per parameter of the estimator's
``__init__``, in the order of the signature, with the default read from the signature, so the
documented defaults can never drift from the real ones. A parameter is described by the
estimator's own text when it passes one, else by the shared text below; a parameter with
neither is an error at import time, so no parameter goes undocumented.
"""

from __future__ import annotations

import inspect
import textwrap

from ._utils import gpu_batch_size, grown_base_epochs

# name: (type, description). Descriptions are plain text; fill_parameter_docs wraps them.
PARAMETER_DOCS: dict[str, tuple[str, str]] = {
    "cell": (
        "str or callable",
        """The recurrent cell: a name from :func:`skrnn.cells.list_cells` (``"rnn"``,
``"lstm"``, ``"gru"`` or a plugin) or a cell factory.""",
    ),
    "hidden_size": (
        "int or tuple of int",
        """Units per recurrent layer. A tuple such as ``(64, 32)`` stacks layers of those
sizes.""",
    ),
    "num_layers": (
        "int",
        "Number of stacked recurrent layers of ``hidden_size`` units (int ``hidden_size`` only).",
    ),
    "bidirectional": ("bool", "Read each sequence in both directions and concatenate the two."),
    "dropout": (
        "float",
        """Dropout between recurrent layers and in the dense head (including before the output
layer).""",
    ),
    "readout": (
        '{"last", "mean", "max"}',
        """How the per-step outputs become one vector per image: the final state of each
direction, or the mean or maximum over time.""",
    ),
    "head": (
        "tuple of int",
        "Widths of hidden Linear+ReLU layers between the readout and the output layer.",
    ),
    "image_shape": (
        "tuple of int",
        "``(H, W)`` or ``(H, W, C)`` when ``X`` is given as flat rows ``(n, H * W * C)``.",
    ),
    "order": (
        '{"rows", "columns", "pixels", "patches"}',
        """How images are read as sequences (see :class:`skrnn.ImageToSequence`). A 3-D ``X``
``(n, T, F)`` read by rows is used as it is, so the output of ``ImageToSequence`` feeds
straight in.""",
    ),
    "patch_size": ("int or tuple of int", '``(ph, pw)`` for ``order="patches"``.'),
    "max_epochs": (
        'int or "auto"',
        """Passes over the training data. ``"auto"`` is a budget of at least {base_epochs}
epochs, and more on small data: enough epochs for {min_updates} gradient steps (at most 1000
epochs), so that 20 large images may train as long as thousands of small ones; the fit ends
sooner once the training loss has stopped improving (see ``tol``). An int is used as it is.""",
    ),
    "batch_size": (
        'int or "auto"',
        """{samples} per gradient step. ``"auto"`` takes {cpu_batch_size}, except on a GPU with
``max_epochs="auto"``: a GPU trains small batches at the speed of its kernel launches rather
than of its arithmetic, so there it doubles that up to 8 times as many while a batch holds at
most about a million input values ({gpu_batch_28} images of 28x28 a batch; photos of 180x240x3
stay at {cpu_batch_size}). Fewer, larger steps learn less per epoch, so the automatic epochs
then grow by the square root of that factor (at least {gpu_base_epochs} instead of
{base_epochs} at 28x28), and still give at least {min_updates} gradient steps; ``lr`` stays
the same. With a given ``max_epochs``, ``"auto"`` keeps {cpu_batch_size} on every device, so
that those epochs train alike. An int is used as it is.""",
    ),
    "lr": ("float", "Learning rate."),
    "optimizer": (
        '{"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class',
        """The optimizer. Adam and AdamW run torch's fused single-kernel update where the torch
build has it.""",
    ),
    "weight_decay": ("float", "L2 penalty passed to the optimizer."),
    "lr_schedule": (
        '{"onecycle", "cosine", "constant"}',
        """How the learning rate moves during training: a one-cycle warm-up and annealing over
``max_epochs`` (reaching ``lr`` at its peak), cosine annealing per epoch, or constant.""",
    ),
    "max_grad_norm": (
        "float or None",
        "Clip the gradient norm to this value each step (None turns clipping off).",
    ),
    "early_stopping": (
        "bool",
        """Hold out ``validation_fraction`` of the training data (stratified for classifiers),
stop when the validation loss has not improved for ``n_iter_no_change`` epochs, and restore
the weights of the best epoch.""",
    ),
    "validation_fraction": (
        "float",
        "Share of the training data held out when ``early_stopping=True``.",
    ),
    "n_iter_no_change": (
        "int",
        """Patience, in epochs: of early stopping, and with ``max_epochs="auto"`` and no early
stopping, of the training loss (see ``tol``).""",
    ),
    "tol": (
        "float or None",
        """With ``max_epochs="auto"`` and ``early_stopping=False``, training ends before its
budget once it has converged, as ``MLPClassifier``'s ``tol`` and ``n_iter_no_change`` end it:
when for ``n_iter_no_change`` epochs in a row the training loss has not fallen below the best
epoch's by more than ``tol`` times the first epoch's loss (its scale, whatever the units), the
learning rate anneals to its final value over a fifth of the epochs trained so far (at once
with ``lr_schedule="constant"``), and the fit stops. None trains the whole budget. An int
``max_epochs`` always trains that many epochs.""",
    ),
    "class_weight": (
        'dict, "balanced", "balanced_sqrt" or None',
        """Weights per class in the loss, keyed by label; ``"balanced"`` weighs each class
inversely to its frequency in the training targets, ``"balanced_sqrt"`` inversely to the
square root of its frequency (a milder balance).""",
    ),
    "label_smoothing": (
        "float",
        """Share of each target spread over all classes in the cross-entropy loss (as in
:class:`torch.nn.CrossEntropyLoss`); it keeps the network from growing over-confident on
small data sets.""",
    ),
    "embedding_dim": (
        "int or None",
        """Treat ``X`` as integer ids (token sequences ``(n, T)``, or images of discrete
levels) and embed each id as a vector of this size before the recurrent layers.""",
    ),
    "n_tokens": (
        "int or None",
        "Number of distinct ids for the embedding; inferred as ``X.max() + 1`` when None.",
    ),
    "augment": (
        '"auto", bool or dict',
        """Random changes of every training batch, never at predict time: flips, shifts, zooms
and intensity changes, applied to the images and their label masks together and seeded by
``random_state``. False: none; True: ``{standard_augmentation}``; ``"auto"``: True for images
at least 16 pixels high and wide (and pixel values, not ids), False for smaller ones, where a
shift of a tenth is less than a pixel; a dict chooses the options:
``hflip`` / ``vflip`` (flip half the images left-right / upside down; leave them off for text
and digits), ``shift`` (move each image by up to this share of its size), ``scale`` (zoom in or
out by up to this share) and ``intensity`` (change contrast by up to this share and brightness
by up to this many standard deviations).""",
    ),
    "device": (
        "str",
        """``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or
``"cuda:N"``. On a machine with several GPUs, ``"auto"`` uses the current GPU, but the
worker processes of a parallel search (``n_jobs``, Dask) spread over the GPUs: worker ``k``
takes GPU ``k mod n_gpus``. Pass ``"cuda:N"`` (or set ``CUDA_VISIBLE_DEVICES``) to choose.""",
    ),
    "precision": (
        '{"float32", "bfloat16", "float16"}',
        """The arithmetic of the forward passes. ``"bfloat16"`` and ``"float16"`` run them
under torch's autocast (mixed precision: matrix products in 16 bits, the weights and the loss in
float32), several times the matrix throughput of float32 on recent GPUs; ``"float16"`` also
scales the loss so small gradients do not vanish, and needs a CUDA device. ``"bfloat16"``
also runs on CPUs (fast on those with bfloat16 units); a recurrent layer that the device cannot
run in bfloat16 (torch's LSTM on a CPU without AVX-512) computes in float32 instead, with one
:class:`~skrnn.exceptions.PrecisionWarning`. The default is float32 on every device. Saved
weights stay float32; a float16 model loaded on the CPU predicts in float32.""",
    ),
    "n_threads": (
        "int or None",
        """Torch CPU threads during ``fit`` and ``predict``. None keeps torch's setting, which
follows ``OMP_NUM_THREADS`` and the per-worker limits of joblib and sklearn's ``n_jobs``, so
parallel searches do not oversubscribe the cores; it is capped at the cores the process may
use, a container's CPU quota included.""",
    ),
    "random_state": (
        "int, RandomState instance or None",
        """Seeds weight initialisation, shuffling, dropout and the validation split. With an
int, refits on the CPU are bit-identical.""",
    ),
    "verbose": (
        "int",
        """0 prints nothing; 1 shows a progress bar and a per-epoch table of losses and the
validation score.""",
    ),
    "warm_start": (
        "bool",
        "Continue training the fitted network on the next ``fit`` instead of starting anew.",
    ),
    "callbacks": (
        "list of skorch callbacks or (name, callback) pairs",
        "Extra skorch callbacks, for power users.",
    ),
    "checkpoint": (
        "str, os.PathLike or None",
        """A file to which ``fit`` writes its state after every epoch (weights, optimizer,
schedule, early stopping, random generators), atomically. If a fit is killed, the same ``fit``
with the same path resumes after the last finished epoch and, on the CPU with an int
``random_state``, ends with the weights an uninterrupted fit would have. A checkpoint of another
fit (other data or parameters) is refused with an error saying what differs. The file is
removed when the fit finishes. ``partial_fit`` ignores it. Give each fit its own path: fits
running at once (a parallel search) must not share one. Not saved in model files.""",
    ),
    "distributed": (
        '{"auto", True, False}',
        """Train one model in several processes (data parallelism with PyTorch's
``DistributedDataParallel``; see :mod:`skrnn.distributed`). ``"auto"`` does so in a script
launched by ``torchrun`` for several processes, or where a ``torch.distributed`` process group
of several is initialised, and trains alone otherwise; True insists (an error outside such a
group); False always trains alone. ``batch_size`` stays the global batch, split between the
processes.""",
    ),
}

_SLOT = "{parameters}"


def fill_doc(**texts: str):
    """Decorator: put ``texts`` into the ``{name}`` slots of a docstring (a shared paragraph).

    Parameters
    ----------
    **texts : str
        ``name=text`` for each slot ``{name}``; the text replaces the slot as it stands, so
        it carries its own indentation after its first line.

    Returns
    -------
    decorator : callable
        Takes a function or class and returns it with its docstring filled.
    """

    def decorate(obj):
        if obj.__doc__:  # None under python -OO
            for name, text in texts.items():
                obj.__doc__ = obj.__doc__.replace("{" + name + "}", text)
        return obj

    return decorate


def _format_default(value) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _entry(name: str, default, type_text: str, description: str) -> str:
    body = textwrap.fill(
        " ".join(description.split()), width=96, initial_indent=" " * 8, subsequent_indent=" " * 8
    )
    return f"    {name} : {type_text}, default={_format_default(default)}\n{body}"


def _gpu_base_epochs(cls) -> int:
    """The base epochs of ``max_epochs="auto"`` on a GPU for 28x28 images, for the docstrings."""
    cpu_batch = getattr(cls, "_cpu_batch_size", 1)
    return grown_base_epochs(
        getattr(cls, "_base_epochs", 0), gpu_batch_size(cpu_batch, 28 * 28), cpu_batch
    )


def fill_parameter_docs(**own: tuple[str, str]):
    """Class decorator: fill the ``{parameters}`` slot of the class docstring.

    Parameters
    ----------
    **own : tuple of (str, str)
        ``name=(type, description)`` for the parameters this estimator describes itself: its
        own parameters, and shared ones whose meaning differs for it.

    Returns
    -------
    decorator : callable
        Takes the class and returns it with its docstring filled.

    Raises
    ------
    ValueError
        If the docstring has no ``{parameters}`` slot, or a parameter of ``__init__`` has no
        description.
    """

    def decorate(cls):
        doc = cls.__doc__ or ""
        if _SLOT not in doc:
            raise ValueError(f"The docstring of {cls.__name__} has no {_SLOT} slot.")
        entries = []
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if name == "self":
                continue
            described = own.get(name) or PARAMETER_DOCS.get(name)
            if described is None:
                raise ValueError(f"{cls.__name__} does not describe its parameter {name!r}.")
            type_text, description = described
            for slot, value in {
                "{standard_augmentation}": repr(getattr(cls, "_standard_augmentation", {})),
                "{base_epochs}": str(getattr(cls, "_base_epochs", "")),
                "{min_updates}": str(getattr(cls, "_min_updates", "")),
                "{cpu_batch_size}": str(getattr(cls, "_cpu_batch_size", "")),
                "{gpu_batch_28}": str(gpu_batch_size(getattr(cls, "_cpu_batch_size", 1), 28 * 28)),
                "{gpu_base_epochs}": str(_gpu_base_epochs(cls)),
                "{samples}": getattr(cls, "_sample_noun", "Samples"),
            }.items():
                description = description.replace(slot, value)
            entries.append(_entry(name, parameter.default, type_text, description))
        # The slot stands indented by four spaces, like the entries themselves.
        cls.__doc__ = doc.replace(f"    {_SLOT}", "\n".join(entries))
        return cls

    return decorate
