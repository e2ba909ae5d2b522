"""Test accuracy of larger training batches, on any device: what ``batch_size="auto"`` takes on a
GPU, measured where it is cheap to measure (the device does not change the accuracy).

``RNNImageClassifier`` with its defaults except the batch size, learning rate and epochs of
each configuration, on 20,000 MNIST-sized digits (``gpu.mnist_sized``), scored on 10,000
made from 397 bundled digits that no training image came from. Prints one row per
configuration, side by side in one run.

    python benchmarks/batch_accuracy.py                        # the CPU's batch and the GPU's
    python benchmarks/batch_accuracy.py --config 256:8.5e-3:30 --config 128:6e-3:30
    OMP_NUM_THREADS=1 python benchmarks/batch_accuracy.py --n-threads 1 --config 32:3e-3:auto

A configuration is ``BATCH:LR:EPOCHS`` (``EPOCHS`` may be ``auto``). The default compares the
CPU's batch with its automatic 30 epochs against what a GPU takes: 8 times the batch and
sqrt(8) times the epochs. On two cores each row takes several minutes.
"""

from __future__ import annotations

import argparse
import time

from gpu import mnist_sized

from skrnn import RNNImageClassifier

DEFAULT_CONFIGS = ["32:3e-3:auto", "256:3e-3:85"]


def parse_config(text: str) -> tuple[int, float, int | str]:
    batch, lr, epochs = text.split(":")
    return int(batch), float(lr), epochs if epochs == "auto" else int(epochs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", default=None, help="BATCH:LR:EPOCHS")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--n-threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    X, y = mnist_sized(args.n_train)
    X_test, y_test = mnist_sized(args.n_test, seed=1, part="test")
    print(f"{args.n_train} training and {args.n_test} test images of 28x28, on {args.device}")
    print("| batch | lr | max_epochs | epochs | fit (s) | test accuracy |")
    print("|---|---|---|---|---|---|")
    for batch, lr, epochs in map(parse_config, args.config or DEFAULT_CONFIGS):
        clf = RNNImageClassifier(
            batch_size=batch,
            lr=lr,
            max_epochs=epochs,
            device=args.device,
            n_threads=args.n_threads,
            random_state=0,
        )
        start = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - start
        print(
            f"| {batch} | {lr:g} | {epochs} | {clf.n_iter_} | {seconds:.0f} "
            f"| {clf.score(X_test, y_test):.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
