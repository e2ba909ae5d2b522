"""Training on data larger than memory: a uint8 ``np.memmap`` read batch by batch.

Writes a memory map of random uint8 images (2.1 GB by default: 680,000 images of 56x56) to a
temporary folder, trains one epoch of a small ``RNNImageClassifier`` on it, predicts it
whole, and reports the peak resident memory of the process (``resource.getrusage``) against
the size of the data. Target: peak RSS at most 25 % of the data size. The file is deleted at
the end.

The label of an image is whether its top half is brighter than its bottom half, so there is
something to learn. The images are written with plain file writes (not through a memory map),
so writing them does not count towards the peak either.

    python benchmarks/memmap.py [--gigabytes 2.1] [--image-size 56] [--dir /tmp]

Run it in a fresh process: on Linux a child started from a large parent inherits the parent's
peak in ``getrusage``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from skrnn import RNNImageClassifier


def peak_rss_bytes() -> int:
    """The peak resident memory of this process so far (kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss_bytes() -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def write_images(path: Path, n: int, size: int, seed: int = 0, chunk: int = 5_000):
    """Write ``n`` random ``size`` x ``size`` uint8 images to ``path``; return their labels."""
    rng = np.random.default_rng(seed)
    labels = np.empty(n, dtype=np.int64)
    with open(path, "wb") as file:
        for start in range(0, n, chunk):
            images = rng.integers(0, 256, size=(min(chunk, n - start), size, size), dtype=np.uint8)
            top = images[:, : size // 2].mean(axis=(1, 2))
            bottom = images[:, size // 2 :].mean(axis=(1, 2))
            labels[start : start + len(images)] = top > bottom
            images.tofile(file)
    return labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.1, help="data size (default 2.1)")
    parser.add_argument("--image-size", type=int, default=56, help="image side (default 56)")
    parser.add_argument("--hidden-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--dir", default=None, help="where to write the temporary file")
    args = parser.parse_args(argv)

    size = args.image_size
    n = int(args.gigabytes * 1e9) // (size * size)
    data_bytes = n * size * size
    folder = Path(tempfile.mkdtemp(prefix="skrnn-memmap-", dir=args.dir))
    path = folder / "images.u8"
    try:
        start = time.perf_counter()
        labels = write_images(path, n, size)
        print(
            f"wrote {n:,} images of {size}x{size} ({data_bytes / 1e9:.2f} GB) to {path} in "
            f"{time.perf_counter() - start:.0f} s"
        )
        X = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, size, size))
        clf = RNNImageClassifier(
            cell="gru",
            hidden_size=args.hidden_size,
            bidirectional=False,
            dropout=0.0,
            max_epochs=1,
            batch_size=args.batch_size,
            lr=1e-2,
            random_state=0,
            verbose=1,
        )
        # The same fit on 1,000 in-memory images first: the peak it leaves is what torch and
        # skrnn cost whatever the data (libraries, kernels, allocator pools).
        sample = np.array(X[:1000])
        clf.set_params(verbose=0).fit(sample, labels[:1000]).predict(sample)
        fixed_peak = peak_rss_bytes()
        clf.set_params(verbose=1)
        before = current_rss_bytes()
        start = time.perf_counter()
        clf.fit(X, labels)
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = float((clf.predict(X) == labels).mean())
        predict_time = time.perf_counter() - start

        peak = peak_rss_bytes()
        print()
        print(f"data (uint8 memmap)       {data_bytes / 2**20:>9,.0f} MiB")
        print(f"float32 copy would be     {4 * data_bytes / 2**20:>9,.0f} MiB")
        if before is not None:
            print(f"RSS before fit            {before / 2**20:>9,.0f} MiB  (imports, labels)")
        print(
            f"peak RSS, 1,000 images    {fixed_peak / 2**20:>9,.0f} MiB  (the fixed cost of "
            "torch and skrnn)"
        )
        share = 100 * peak / data_bytes
        print(
            f"peak RSS (getrusage)      {peak / 2**20:>9,.0f} MiB  = {share:.1f} % of the data "
            "(target <= 25 %)"
        )
        print(
            f"peak RSS growth from data {(peak - fixed_peak) / 2**20:>9,.0f} MiB  = "
            f"{100 * (peak - fixed_peak) / data_bytes:.1f} % of the data"
        )
        print(f"fit, 1 epoch              {fit_time:>9.0f} s")
        print(
            f"predict, all images       {predict_time:>9.0f} s  (training accuracy {accuracy:.3f})"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"deleted {folder}" if not os.path.exists(folder) else f"could not delete {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
