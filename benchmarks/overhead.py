"""What skrnn costs over hand-written PyTorch and plain skorch: fit time and predict throughput.

All three train the same module (skrnn's own, built from the same parameters) with Adam at the
same learning rate, on the same 10,000 random 28x28 images, in batches of 128, for 5 epochs,
with no validation split. skrnn runs with a constant learning rate, no gradient clipping and
no augmentation here, so all three do the same arithmetic (skrnn's Adam is torch's fused
kernel). The repeats run round-robin; each contender keeps its best fit time and its best
prediction throughput (prediction timed three times per fit).

A second table measures the cost of an epoch on tiny data, where fixed per-epoch costs weigh
most: 100 digits, one batch an epoch, 200 epochs, without a validation split (one step on the
100) and with one (one step on 80, then the loss and accuracy on the same held-out fifth every
epoch, as skrnn's ``early_stopping`` scores its split; patience longer than the fit, so every
contender trains all 200 epochs).

    python benchmarks/overhead.py [--repeats 3] [--tiny-only]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timing import best_time
from torch import nn

from skrnn import RNNImageClassifier

PARAMS = dict(
    cell="lstm",
    hidden_size=128,
    readout="last",
    max_epochs=5,
    batch_size=128,
    early_stopping=False,
    lr_schedule="constant",
    max_grad_norm=None,
    label_smoothing=0.0,
    augment=False,  # the contenders do no augmentation
    random_state=0,
)


def make_data(n=10_000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def build_module(X, y):
    """skrnn's module for these parameters, so every contender trains the same network."""
    template = RNNImageClassifier(**{**PARAMS, "max_epochs": 1}).fit(X[:256], y[:256])
    return lambda: template._module_class(**template._module_params())


def hand_written(make_module, X, y):
    torch.manual_seed(0)
    module = make_module()
    optimizer = torch.optim.Adam(module.parameters(), lr=PARAMS.get("lr", 3e-3))
    X_t, y_t = torch.from_numpy(X[..., None]), torch.from_numpy(y)
    start = time.perf_counter()
    module.train()
    for _ in range(PARAMS["max_epochs"]):
        order = torch.randperm(len(X_t))
        for i in range(0, len(X_t), PARAMS["batch_size"]):
            batch = order[i : i + PARAMS["batch_size"]]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(module(X_t[batch]), y_t[batch])
            loss.backward()
            optimizer.step()
    fit_time = time.perf_counter() - start
    module.eval()

    def predict():
        with torch.no_grad():  # the naive way: the training batch size
            for i in range(0, len(X_t), PARAMS["batch_size"]):
                module(X_t[i : i + PARAMS["batch_size"]]).argmax(1)

    return fit_time, len(X) / best_time(predict)


def plain_skorch(make_module, X, y):
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    net = NeuralNetClassifier(
        make_module(),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        max_epochs=PARAMS["max_epochs"],
        batch_size=PARAMS["batch_size"],
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    X4 = X[..., None]
    start = time.perf_counter()
    net.fit(X4, y)
    fit_time = time.perf_counter() - start
    return fit_time, len(X) / best_time(lambda: net.predict(X4))


def skrnn_fit(_, X, y):
    clf = RNNImageClassifier(**PARAMS)
    start = time.perf_counter()
    clf.fit(X, y)
    fit_time = time.perf_counter() - start
    return fit_time, len(X) / best_time(lambda: clf.predict(X))


TINY_EPOCHS = 200


def tiny_data():
    """The first 100 bundled digits, as float32 images."""
    from skrnn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    return X[:100].astype(np.float32), y[:100]


def tiny_hand_written(make_module, X, y, validation):
    """The loop a PyTorch user writes for one batch an epoch, scoring a held-out fifth."""
    torch.manual_seed(0)
    module = make_module()
    optimizer = torch.optim.Adam(module.parameters(), lr=PARAMS.get("lr", 3e-3))
    X_t, y_t = torch.from_numpy(X[..., None]), torch.from_numpy(y)
    if validation:
        train, valid = tiny_split(y)
        X_fit, y_fit, X_val, y_val = X_t[train], y_t[train], X_t[valid], y_t[valid]
    else:
        X_fit, y_fit = X_t, y_t
    start = time.perf_counter()
    for _ in range(TINY_EPOCHS):
        module.train()
        order = torch.randperm(len(X_fit))
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(module(X_fit[order]), y_fit[order])
        loss.backward()
        optimizer.step()
        loss.item()
        if validation:
            module.eval()
            with torch.no_grad():
                logits = module(X_val)
                nn.functional.cross_entropy(logits, y_val).item()
                (logits.argmax(1) == y_val).float().mean().item()
    return (time.perf_counter() - start) / TINY_EPOCHS


def tiny_split(y):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)


def tiny_skrnn(_, X, y, validation):
    clf = RNNImageClassifier(
        **{
            **PARAMS,
            "max_epochs": TINY_EPOCHS,
            "early_stopping": validation,
            "validation_fraction": 0.2,
            "n_iter_no_change": TINY_EPOCHS,
        }
    )
    start = time.perf_counter()
    clf.fit(X, y)
    assert clf.n_iter_ == TINY_EPOCHS
    return (time.perf_counter() - start) / TINY_EPOCHS


def tiny_table(make_module, repeats):
    """Seconds per epoch on 100 digits, one batch an epoch, with and without validation."""
    X, y = tiny_data()
    contenders = {"hand-written loop": tiny_hand_written, "skrnn": tiny_skrnn}
    rows = {}
    for validation in (False, True):
        runs = {name: [] for name in contenders}
        for _ in range(repeats):
            for name, run in contenders.items():
                runs[name].append(run(make_module, X, y, validation))
        rows[validation] = {name: min(done) for name, done in runs.items()}
    print(f"\n100 digits 8x8, one batch an epoch, {TINY_EPOCHS} epochs")
    header = ("validation split", "contender", "ms / epoch", "ratio")
    print("{:<18} {:<20} {:>11} {:>7}".format(*header))
    for validation, results in rows.items():
        base = results["hand-written loop"]
        for name, seconds in results.items():
            label = "held-out fifth" if validation else "none"
            print(f"{label:<18} {name:<20} {1000 * seconds:>11.2f} {seconds / base:>7.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--tiny-only", action="store_true", help="only the tiny-data table")
    args = parser.parse_args(argv)
    if args.tiny_only:
        X, y = tiny_data()
        tiny_table(build_module(X, y), args.repeats)
        return
    X, y = make_data(args.samples)
    make_module = build_module(X, y)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(X)} images 28x28")
    contenders = {
        "hand-written loop": hand_written,
        "plain skorch": plain_skorch,
        "skrnn": skrnn_fit,
    }
    # Round-robin repeats, so a machine that speeds up or slows down over the run affects
    # every contender alike; each keeps its best fit time and best predict throughput.
    runs = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            runs[name].append(run(make_module, X, y))
    results = {
        name: (min(r[0] for r in done), max(r[1] for r in done)) for name, done in runs.items()
    }
    base_fit, base_rate = results["hand-written loop"]
    header = ("contender", "fit s", "fit ratio", "predict img/s", "predict ratio")
    print("{:<20} {:>8} {:>10} {:>14} {:>14}".format(*header))
    for name, (fit_time, rate) in results.items():
        print(
            f"{name:<20} {fit_time:>8.2f} {fit_time / base_fit:>10.3f} {rate:>14.0f} "
            f"{rate / base_rate:>14.2f}"
        )
    X_tiny, y_tiny = tiny_data()
    tiny_table(build_module(X_tiny, y_tiny), args.repeats)


if __name__ == "__main__":
    main()
