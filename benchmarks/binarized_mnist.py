"""RNNImageGenerator on static binarized MNIST, the benchmark of the PixelRNN paper's table.

Takes the folder that holds ``binarized_mnist_train.npz`` and ``binarized_mnist_valid.npz``
(key ``X``, uint8 of shape (n, 28, 28) in {0, 1}), as a user would pass their own copy:

    python benchmarks/binarized_mnist.py ../shared/data/binarized_mnist
        [--n-train 50000] [--budget-s 1200] [--param reader=rows ...] [--figure F.png]

Trains on the train split (all 50,000 images, or ``--n-train`` drawn with the seed), scores
the valid split after every epoch (``--select-on`` images of it, all by default) and keeps the
weights of the best epoch, and stops after the epoch that passes ``--budget-s`` seconds of
training, if given. Prints each epoch's valid NLL, then the fit time, the selected epoch's
negative log-likelihood on the whole valid split in nats per image, scoring speed in images
per second, and the published figures beside it; ``--figure`` saves 64 samples. Select and
tune on valid only: the test split is kept elsewhere.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

from skrnn import RNNImageGenerator
from skrnn._cli import parse_params

# Test NLL in nats of the models of the PixelRNN paper's table (and independent pixels).
PUBLISHED = [
    ("independent pixels (about)", 206.0),
    ("NADE", 88.33),
    ("MADE, 2 hidden layers, 32 masks", 86.64),
    ("PixelCNN", 81.30),
    ("DRAW", 80.97),
    ("PixelRNN, Diagonal BiLSTM, 1 layer, h = 32", 80.75),
    ("PixelRNN, Diagonal BiLSTM, 7 layers, h = 16", 79.20),
]


class SelectOnValid(Callback):
    """Score the valid images after every epoch, keep the best epoch's weights, and end the
    fit after the epoch that passes the time budget."""

    def __init__(self, estimator, X_valid, budget_s=None):
        self.estimator = estimator
        self.X_valid = X_valid
        self.budget_s = budget_s

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.best_, self.best_weights_, self.nll_ = np.inf, None, []

    def on_epoch_end(self, net, **kwargs):
        # The estimator's own scoring, on the net as trained so far.
        nll = -float(np.mean(self.estimator._log_likelihood(self._codes(), None)))
        module = net.module_
        module.train()
        self.nll_.append(nll)
        elapsed = time.perf_counter() - self.start_
        print(
            f"  epoch {len(net.history):3d}  valid NLL {nll:8.3f}  ({elapsed:6.0f} s)", flush=True
        )
        if nll < self.best_:
            self.best_ = nll
            self.best_weights_ = copy.deepcopy(module.state_dict())
        if self.budget_s is not None and elapsed > self.budget_s:
            net.stop_after_epoch_ = True  # skrnn's net ends the fit after this epoch

    def on_train_end(self, net, **kwargs):
        if self.best_weights_ is not None:
            net.module_.load_state_dict(self.best_weights_)

    def _codes(self):
        return self.estimator._quantise(self.X_valid)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder of binarized_mnist_{train,valid}.npz")
    parser.add_argument("--n-train", type=int, default=None, help="train on this many images")
    parser.add_argument("--budget-s", type=float, default=None, help="stop after this epoch")
    parser.add_argument("--select-on", type=int, default=None, help="valid images scored per epoch")
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--no-select", action="store_true", help="plain fit, no selection")
    parser.add_argument("--figure", type=Path, default=None, help="save 64 samples here")
    args = parser.parse_args(argv)
    params = {name: value for name, (value, *_) in parse_params(args.param).items()}

    with np.load(args.root / "binarized_mnist_train.npz") as archive:
        X = archive["X"]
    with np.load(args.root / "binarized_mnist_valid.npz") as archive:
        X_valid = archive["X"]
    if args.n_train is not None:
        chosen = np.random.default_rng(args.random_state).choice(len(X), args.n_train, False)
        X = X[np.sort(chosen)]
    print(f"{len(X)} training images, {len(X_valid)} valid images of {X.shape[1:]} ({X.dtype})")

    model = RNNImageGenerator(random_state=args.random_state, **params)
    selector = None
    if not args.no_select:
        chosen = X_valid if args.select_on is None else X_valid[: args.select_on]
        selector = SelectOnValid(model, chosen, args.budget_s)
        model.set_params(callbacks=[selector])
    start = time.perf_counter()
    model.fit(X)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    nll = -float(np.mean(model.score_samples(X_valid)))
    speed = len(X_valid) / (time.perf_counter() - start)
    chosen_epoch = model.n_iter_ if selector is None else int(np.argmin(selector.nll_)) + 1
    label = f"RNNImageGenerator({', '.join(args.param) or 'defaults'})"
    print(
        f"\n{label}: {model.n_levels_} levels, {model.n_iter_} epochs trained, epoch "
        f"{chosen_epoch} kept; fit {fit:.0f} s; valid NLL {nll:.2f} nats; "
        f"scoring {speed:.0f} images/s"
    )
    print("\npublished test NLL on this data (nats):")
    for name, value in PUBLISHED:
        print(f"  {name:<45} {value:7.2f}")
    if args.figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        samples = model.sample(64, random_state=args.random_state)
        grid = samples.reshape(8, 8, 28, 28).transpose(0, 2, 1, 3).reshape(8 * 28, 8 * 28)
        plt.imsave(args.figure, grid, cmap="gray_r")
        print(f"samples saved to {args.figure}")


if __name__ == "__main__":
    main()
