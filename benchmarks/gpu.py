"""skrnn on a GPU, side by side in one run: overhead, mixed precision, defaults, memory maps.

1. **Overhead.** skrnn against a hand-written CUDA loop over the same module (data on the
   device, torch's fused Adam, batches of 128, 5 epochs, LSTM(128), 20,000 images 28x28);
   prediction under ``inference_mode`` at the batch size skrnn chooses. Ratios: fit time
   (target ≤ 1.05) and predict throughput (target ≥ 1.0).
2. **Precision.** The same classifier in float32, bfloat16 and float16: training images/s and
   test accuracy on MNIST-sized digits.
3. **Defaults.** ``RNNImageClassifier()`` on 60,000 MNIST-sized uint8 images: training
   images/s (target ≥ 50,000 on an H100-class GPU) and test accuracy; then, on a third of
   the images, the defaults side by side with ``batch_size=32``, the batch ``"auto"`` takes on
   the CPU (the accuracy the defaults reach on a CPU; target: no lower).
4. **Memory maps.** One fit on a ``np.memmap`` of the images against the same data in memory
   (target: at most 10 % slower).

MNIST-sized images are made from the bundled digits (no download): each 8x8 digit scaled 3x,
placed at a random offset in a 28x28 frame, with noise, as uint8; test images come from 397
bundled digits that no training image was made from.

Then, with ``--profile DIR``, the profiler's account of one epoch of each contender of part 1
(time on the host, time the GPU's kernels ran, the busiest host operations) and of skrnn's
``predict`` (validation against the loop), with the full tables written to ``DIR``.

    python benchmarks/gpu.py                 # on a GPU machine, a few minutes on an H100
    python benchmarks/gpu.py --profile out   # the same, then the profiler's account
    python benchmarks/gpu.py --small         # a dry run of every step on the CPU, in a minute
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from overhead import PARAMS
from timing import best_time
from torch import nn

import skrnn
from skrnn import RNNImageClassifier
from skrnn.datasets import load_digits_images

OVERHEAD = PARAMS  # the module and training of benchmarks/overhead.py


def mnist_sized(n: int, seed: int = 0, part: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 digits made from the bundled 8x8 ones (scaled, shifted, noisy).

    ``part="train"`` draws from the first 1,400 bundled digits and ``"test"`` from the other
    397, so that test images come from digits the training images never saw.
    """
    rng = np.random.default_rng(seed)
    digits, labels = load_digits_images(return_X_y=True)
    bases = np.arange(1400) if part == "train" else np.arange(1400, len(digits))
    pick = rng.choice(bases, n)
    big = np.kron(digits[pick] / 16.0, np.ones((3, 3)))  # (n, 24, 24)
    images = np.zeros((n, 28, 28))
    rows, cols = rng.integers(0, 5, n), rng.integers(0, 5, n)
    for i in range(n):
        images[i, rows[i] : rows[i] + 24, cols[i] : cols[i] + 24] = big[i]
    images += rng.normal(0, 0.05, images.shape)
    return (np.clip(images, 0, 1) * 255).astype(np.uint8), labels[pick]


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def hand_written(template, X, y, device, predict_batch, epochs=OVERHEAD["max_epochs"], rate=True):
    """The same module trained by a plain loop with the data already on the device."""
    torch.manual_seed(0)
    module = template._module_class(**template._module_params()).to(device)
    fused = torch.device(device).type == "cuda"
    optimizer = torch.optim.Adam(module.parameters(), lr=template.lr, fused=fused)
    X_t = torch.as_tensor(X[..., None], dtype=torch.float32, device=device)
    y_t = torch.as_tensor(y, device=device)
    batch_size = OVERHEAD["batch_size"]
    synchronize(device)
    start = time.perf_counter()
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t), device=device)
        for i in range(0, len(X_t), batch_size):
            batch = order[i : i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(module(X_t[batch]), y_t[batch]).backward()
            optimizer.step()
    synchronize(device)
    fit_seconds = time.perf_counter() - start
    module.eval()

    def predict():
        with torch.inference_mode():
            for i in range(0, len(X_t), predict_batch):
                module(X_t[i : i + predict_batch]).argmax(1).cpu()

    return fit_seconds, (len(X) / best_time(predict, warm_up=True) if rate else None)


def overhead(X, y, device, repeats):
    params = {**OVERHEAD, "device": device}
    template = RNNImageClassifier(**{**params, "max_epochs": 1}).fit(X[:256], y[:256])
    predict_batch = template._inference_batch_size(28 * 28)
    rows = {"hand-written loop": [], "skrnn": []}
    for _ in range(repeats):  # round-robin, best of each
        rows["hand-written loop"].append(hand_written(template, X, y, device, predict_batch))
        clf = RNNImageClassifier(**params)
        synchronize(device)
        start = time.perf_counter()
        clf.fit(X, y)
        synchronize(device)
        rows["skrnn"].append(
            (
                time.perf_counter() - start,
                len(X) / best_time(lambda clf=clf: clf.predict(X), warm_up=True),
            )
        )
    best = {name: (min(r[0] for r in runs), max(r[1] for r in runs)) for name, runs in rows.items()}
    base_fit, base_rate = best["hand-written loop"]
    print(
        f"\n1. overhead: LSTM(128), {len(X)} images 28x28, batch 128, "
        f"{OVERHEAD['max_epochs']} epochs; predict batch {predict_batch}"
    )
    print("| contender | fit (s) | fit ratio | predict (img/s) | predict ratio |")
    print("|---|---|---|---|---|")
    for name, (fit_seconds, rate) in best.items():
        print(
            f"| {name} | {fit_seconds:.2f} | {fit_seconds / base_fit:.3f} | {rate:,.0f} "
            f"| {rate / base_rate:.2f} |"
        )


def timed_fit(estimator, X, y, device):
    synchronize(device)
    start = time.perf_counter()
    estimator.fit(X, y)
    synchronize(device)
    return time.perf_counter() - start


def precision(X, y, X_test, y_test, device, epochs):
    print(
        f"\n2. precision: RNNImageClassifier(max_epochs={epochs}, batch_size=256), "
        f"{len(X)} images 28x28"
    )
    print("| precision | fit (s) | train img/s | test accuracy |")
    print("|---|---|---|---|")
    for name in ("float32", "bfloat16", "float16"):
        if name == "float16" and torch.device(device).type != "cuda":
            print("| float16 | - | - | needs CUDA |")
            continue
        clf = RNNImageClassifier(
            precision=name, max_epochs=epochs, batch_size=256, random_state=0, device=device
        )
        seconds = timed_fit(clf, X, y, device)
        rate = len(X) * clf.n_iter_ / seconds
        print(f"| {name} | {seconds:.1f} | {rate:,.0f} | {clf.score(X_test, y_test):.4f} |")


def defaults(X, y, X_test, y_test, device, params, n_compared):
    print(f"\n3. defaults{params or ''}: uint8 images 28x28")
    print(
        "| batch_size | training images | batch | epochs | fit (s) | train img/s | test accuracy |"
    )
    print("|---|---|---|---|---|---|---|")
    # The throughput at MNIST size; then, on fewer images (a CPU-sized batch trains 8 times
    # as many steps), the accuracy against the batch the defaults take on the CPU.
    runs = [("auto", len(X)), ("auto", n_compared), (32, n_compared)]
    for batch_size, n in runs:
        clf = RNNImageClassifier(random_state=0, device=device, batch_size=batch_size, **params)
        seconds = timed_fit(clf, X[:n], y[:n], device)
        # Epochs times the images each one trains on (early stopping holds out a tenth).
        trained = sum(epoch["train_batch_count"] for epoch in clf.history_) * clf.net_.batch_size
        rate = min(trained, n * clf.n_iter_) / seconds
        print(
            f"| {batch_size!r} | {n:,} | {clf.net_.batch_size} | {clf.n_iter_} | {seconds:.1f} "
            f"| {rate:,.0f} | {clf.score(X_test, y_test):.4f} |"
        )
    print("(target: 'auto' at least 50,000 images/s on an H100, and at least the accuracy of 32)")


def memmap(X, y, device, epochs):
    params = dict(max_epochs=epochs, batch_size=256, random_state=0, device=device)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "images.npy"
        np.save(path, X)
        mapped = np.load(path, mmap_mode="r")
        in_memory = timed_fit(RNNImageClassifier(**params), X, y, device)
        on_disk = timed_fit(RNNImageClassifier(**params), mapped, y, device)
    print(f"\n4. memory map: {len(X)} uint8 images 28x28, {epochs} epochs")
    print("| data | fit (s) | ratio |")
    print("|---|---|---|")
    print(f"| in memory | {in_memory:.1f} | 1.000 |")
    print(f"| np.memmap | {on_disk:.1f} | {on_disk / in_memory:.3f} (target ≤ 1.10) |")


def _device_seconds(events) -> float:
    """Seconds the GPU's kernels and copies ran, from a profiler's averaged events: the sum
    over the device's own events (as the profiler's table totals it), not over the host
    operations that launched them, which would count each kernel twice."""
    from torch.autograd import DeviceType

    total = 0.0
    for event in events:
        if event.device_type != DeviceType.CPU:
            total += getattr(event, "self_device_time_total", None) or getattr(
                event, "self_cuda_time_total", 0
            )
    return total / 1e6


def _profiled(name, function, device, folder):
    """Run ``function`` under torch's profiler; print the host and device time, the busiest
    host operations, and write the full table to ``folder``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.device(device).type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    synchronize(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        function()
        synchronize(device)
    wall = time.perf_counter() - start
    events = prof.key_averages()
    busy = _device_seconds(events)
    print(
        f"\n{name}: {wall:.3f} s under the profiler; GPU kernels {busy:.3f} s "
        f"({busy / wall:.0%} busy)"
    )
    table = events.table(sort_by="self_cpu_time_total", row_limit=40)
    (Path(folder) / f"{name.replace(' ', '_')}.txt").write_text(table)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    print("| host operation | calls | self host time (ms) |")
    print("|---|---|---|")
    for event in top:
        print(f"| {event.key[:60]} | {event.count} | {event.self_cpu_time_total / 1e3:.1f} |")


def profile_overhead(X, y, device, folder):
    """The profiler's account of one epoch of part 1's contenders and of skrnn's predict."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    print("\n5. profile: one epoch of part 1's contenders, and skrnn's predict")
    params = {**OVERHEAD, "device": device, "max_epochs": 1}
    template = RNNImageClassifier(**params).fit(X[:256], y[:256])
    predict_batch = template._inference_batch_size(28 * 28)
    _profiled(
        "hand-written epoch",
        lambda: hand_written(template, X, y, device, predict_batch, epochs=1, rate=False),
        device,
        folder,
    )
    clf = RNNImageClassifier(**params)
    _profiled("skrnn epoch", lambda: clf.fit(X, y), device, folder)
    clf.predict(X)  # warm
    _profiled("skrnn predict", lambda: clf.predict(X), device, folder)
    check = best_time(lambda: clf._check_X(X, reset=False))
    loop = best_time(lambda: clf.predict(X))
    print(
        f"\nskrnn predict of {len(X)} images: {loop * 1e3:.1f} ms, of which validating X "
        f"{check * 1e3:.1f} ms"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a quick dry run (CPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--profile", default=None, help="also profile; full tables to this folder")
    parser.add_argument(
        "--parts", default="1,2,3,4", help="which parts to run, e.g. 1,4 (default: all four)"
    )
    args = parser.parse_args(argv)
    device = str(skrnn._utils.resolve_device(args.device))
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    print(f"skrnn {skrnn.__version__}, torch {torch.__version__}, {device} ({name})")
    n_overhead, n_train, n_test = (1_000, 2_000, 500) if args.small else (20_000, 60_000, 10_000)
    X_train, y_train = mnist_sized(n_train)
    X_test, y_test = mnist_sized(n_test, seed=1, part="test")
    rng = np.random.default_rng(0)
    X_noise = rng.random((n_overhead, 28, 28), dtype=np.float32)
    parts = {int(part) for part in args.parts.split(",")}
    y_noise = rng.integers(0, 10, n_overhead)
    if 1 in parts:
        overhead(X_noise, y_noise, device, repeats=1 if args.small else 2)
    if 2 in parts:
        precision(X_train, y_train, X_test, y_test, device, epochs=1 if args.small else 5)
    if 3 in parts:
        small = {"max_epochs": 1} if args.small else {}
        defaults(X_train, y_train, X_test, y_test, device, small, n_train // 3)
    if 4 in parts:
        memmap(X_train, y_train, device, epochs=1 if args.small else 3)
    if args.profile:
        profile_overhead(X_noise, y_noise, device, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
