"""How close skrnn's recurrent cells come to the machine's float32 matrix-multiply speed.

A recurrent cell's arithmetic is almost all matrix multiplies: every time step multiplies the
batch's ``[x_t, h_{t-1}]`` by the gate weights, ``G * H * (I + H)`` multiply-adds per sample
(``G`` = 4 gates for the LSTM, 3 for the GRU). Counting two FLOPs per multiply-add, a forward
pass does ``2 * B * T * G * H * (I + H)`` FLOPs and a training step (forward, then gradients
for the inputs and for the weights) three times that. The element-wise gate arithmetic is not
counted, so the figures are, if anything, low.

Three kinds of rows, measured in the same run with the same thread count:

* **matmul** -- the machine's ceiling: a large square float32 matrix multiply, and the
  matrix multiply of one time step's gates (``(B, I + H) @ (I + H, G * H)``) on its own;
* **cell** -- the cell skrnn builds (``skrnn.cells.build_cell``, torch's fused kernel), one
  training step (forward + backward) and one inference pass under ``torch.inference_mode``;
* **fit / predict** -- ``RNNImageClassifier.fit`` for one epoch and ``predict`` on random
  images of ``T x I`` pixels, read row by row, counting the cell's FLOPs only, so the share
  lost to the rest (the head, the loss, the optimiser, batching) shows as the gap to the cell
  row.

    python benchmarks/roofline.py [--hidden-size 256] [--batch-size 256] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timing import best_time

from skrnn import RNNImageClassifier
from skrnn.cells import build_cell

GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def matmul_rows(args, hidden, inputs, repeats):
    rows = []
    n = args.matmul_size
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = best_time(lambda: a @ b, 3 * repeats, warm_up=True)
    rows.append((f"matmul {n}x{n} @ {n}x{n}", 2 * n**3 / seconds / 1e9))
    for cell in args.cells:
        width = GATES[cell] * hidden
        x, w = torch.randn(args.batch_size, inputs + hidden), torch.randn(inputs + hidden, width)
        seconds = best_time(lambda x=x, w=w: x @ w, 20 * repeats, warm_up=True)
        flops = 2 * args.batch_size * (inputs + hidden) * width
        rows.append(
            (
                f"matmul {cell} gates {args.batch_size}x{inputs + hidden} @ "
                f"{inputs + hidden}x{width}",
                flops / seconds / 1e9,
            )
        )
    return rows


def cell_flops(cell, batch, steps, inputs, hidden):
    return 2 * batch * steps * GATES[cell] * hidden * (inputs + hidden)


def cell_rows(args, repeats):
    rows = []
    batch, steps = args.batch_size, args.seq_len
    inputs, hidden = args.input_size, args.hidden_size
    for cell in args.cells:
        module = build_cell(cell, inputs, hidden, 1, False, 0.0)
        x = torch.randn(batch, steps, inputs)
        flops = cell_flops(cell, batch, steps, inputs, hidden)

        def train_step(module=module, x=x):
            module.zero_grad(set_to_none=True)
            module(x).sum().backward()

        def infer(module=module, x=x):
            with torch.inference_mode():
                module(x)

        train_seconds = best_time(train_step, repeats, warm_up=True)
        rows.append((f"{cell} cell, training step", 3 * flops / train_seconds / 1e9))
        rows.append(
            (f"{cell} cell, inference", flops / best_time(infer, repeats, warm_up=True) / 1e9)
        )
    return rows


def estimator_rows(args):
    rows = []
    batch, steps = args.batch_size, args.seq_len
    inputs, hidden = args.input_size, args.hidden_size
    rng = np.random.default_rng(0)
    n = args.n_images
    X = rng.random((n, steps, inputs), dtype=np.float32)
    y = rng.integers(0, 10, n)
    for cell in args.cells:
        model = RNNImageClassifier(
            cell=cell,
            hidden_size=hidden,
            bidirectional=False,
            dropout=0.0,
            readout="last",
            max_epochs=1,
            batch_size=batch,
            lr_schedule="constant",
            max_grad_norm=None,
            label_smoothing=0.0,
            random_state=0,
        )
        model.fit(X[:batch], y[:batch])  # warm-up: first calls into the kernels
        start = time.perf_counter()
        model.fit(X, y)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        model.predict(X)
        predict_seconds = time.perf_counter() - start
        flops = cell_flops(cell, n, steps, inputs, hidden)
        rows.append((f"{cell} RNNImageClassifier.fit, 1 epoch", 3 * flops / fit_seconds / 1e9))
        rows.append((f"{cell} RNNImageClassifier.predict", flops / predict_seconds / 1e9))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=28, help="time steps (image rows)")
    parser.add_argument("--input-size", type=int, default=28, help="features per step (columns)")
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"], choices=sorted(GATES))
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--n-images", type=int, default=8192, help="images for fit/predict")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; B={args.batch_size} "
        f"T={args.seq_len} I={args.input_size} H={args.hidden_size}",
        flush=True,
    )
    rows = matmul_rows(args, args.hidden_size, args.input_size, args.repeats)
    peak = rows[0][1]
    rows += cell_rows(args, args.repeats)
    rows += estimator_rows(args)
    width = max(len(name) for name, _ in rows)
    print(f"{'what':<{width}}  {'GFLOP/s':>8}  {'of matmul':>9}")
    for name, gflops in rows:
        print(f"{name:<{width}}  {gflops:>8.1f}  {gflops / peak:>8.0%}")


if __name__ == "__main__":
    main()
