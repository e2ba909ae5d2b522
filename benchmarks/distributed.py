"""Data-parallel training: one process against several, each with one thread.

Writes 60,000 MNIST-sized images (28x28 uint8) to a memory map: sklearn's handwritten digits,
scaled up to 28x28, shifted by up to 3 pixels and with noise added, so there is something real
to learn. Then it fits the default ``RNNImageClassifier`` for the same epochs on them in one
process and in ``--processes`` processes (launched with ``torchrun``, one thread each, gloo),
at the same global batch, and prints the fit times, the speed-up and the held-out accuracy of
both. Every process maps the same file and reads only its share of each batch.

    python benchmarks/distributed.py [--n-images 60000] [--epochs 1] [--processes 2]

Target (2 CPU cores): a speed-up of at least 1.6 with 2 processes.

A multi-GPU machine runs the same script with ``--device cuda``: each process takes the GPU of
its local rank and the processes talk over NCCL.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_images(path: Path, n: int, seed: int = 0) -> np.ndarray:
    """``n`` 28x28 digits (scaled, shifted, noisy) in the ``.npy`` file ``path``; their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    # 8x8 -> 24x24 (each pixel 3x3), placed in a 28x28 frame with a random shift.
    large = np.kron(digits.images, np.ones((3, 3))) * (255 / 16)
    pick = rng.integers(0, len(large), n)
    images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 28, 28))
    for start in range(0, n, 10_000):
        part = pick[start : start + 10_000]
        frame = np.zeros((len(part), 28, 28))
        shifts = rng.integers(0, 5, size=(len(part), 2))
        for i, (dy, dx) in enumerate(shifts):
            frame[i, dy : dy + 24, dx : dx + 24] = large[part[i]]
        frame += rng.normal(0, 30, frame.shape)
        images[start : start + len(part)] = np.clip(frame, 0, 255).astype(np.uint8)
    images.flush()
    return digits.target[pick]


def worker(args) -> None:
    """One process of a fit: time it (after a small warm-up fit), and let rank 0 report."""
    import torch

    from skrnn import RNNImageClassifier, distributed

    images = np.load(args.images, mmap_mode="r")
    labels = np.load(args.labels)
    n_test = args.n_test
    X, y = images[:-n_test], labels[:-n_test]
    clf = RNNImageClassifier(
        max_epochs=args.epochs, random_state=0, n_threads=1, device=args.device
    )
    distributed.init()
    # Torch's one-time costs of a process (importing its compiler and DDP on the first fit)
    # are paid before the clock starts, alike in both runs.
    RNNImageClassifier(max_epochs=1, n_threads=1, device=args.device).fit(X[:256], y[:256])
    if distributed.world_size() > 1:
        torch.distributed.barrier()  # every process starts the clock together
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    if distributed.rank() == 0:
        accuracy = clf.score(np.asarray(images[-n_test:]), labels[-n_test:])
        record = {"processes": distributed.world_size(), "fit_s": fit_s, "accuracy": accuracy}
        Path(args.report).write_text(json.dumps(record))


def run(args, processes: int, folder: Path) -> dict:
    report = folder / f"report{processes}.json"
    command = [
        "--worker",
        "--images",
        str(folder / "images.npy"),
        "--labels",
        str(folder / "labels.npy"),
        "--report",
        str(report),
        "--epochs",
        str(args.epochs),
        "--n-test",
        str(args.n_test),
        "--device",
        args.device,
    ]
    script = str(Path(__file__).resolve())
    if processes == 1:
        launch = [sys.executable, script]
    else:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        launch += ["--nproc-per-node", str(processes), script]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run(launch + command, check=True, env=env)
    record = json.loads(report.read_text())
    record["wall_s"] = time.perf_counter() - start
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-images", type=int, default=60_000)
    parser.add_argument("--n-test", type=int, default=5_000, help="held out of the images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--labels", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory(prefix="skrnn-distributed-") as name:
        folder = Path(name)
        np.save(folder / "labels.npy", write_images(folder / "images.npy", args.n_images))
        rows = [run(args, 1, folder), run(args, args.processes, folder)]
    n_train = args.n_images - args.n_test
    print(
        f"\n{n_train} training images of 28x28, {args.epochs} epoch(s) of the default "
        f"RNNImageClassifier, one thread per process, device {args.device}\n"
    )
    print("| processes | fit (s) | images/s | with start-up (s) | held-out accuracy |")
    print("|---|---|---|---|---|")
    for row in rows:
        speed = n_train * args.epochs / row["fit_s"]
        print(
            f"| {row['processes']} | {row['fit_s']:.1f} | {speed:.0f} | {row['wall_s']:.1f} "
            f"| {row['accuracy']:.4f} |"
        )
    print(f"\nspeed-up of the fit: {rows[0]['fit_s'] / rows[1]['fit_s']:.2f}x (target >= 1.6x)")


if __name__ == "__main__":
    main()
