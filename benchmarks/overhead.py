"""What skrnn costs over hand-written PyTorch and plain skorch: fit time and predict throughput.

All three train the same module (skrnn's own, built from the same parameters) with Adam at the
same learning rate, on the same 10,000 random 28x28 images, in batches of 128, for 5 epochs,
with no validation split. skrnn runs with a constant learning rate, no gradient clipping and
no augmentation here, so all three do the same arithmetic (skrnn's Adam is torch's fused
kernel). The repeats run round-robin; each contender keeps its best fit time and its best
prediction throughput (prediction timed three times per fit).

    python benchmarks/overhead.py [--repeats 3]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
