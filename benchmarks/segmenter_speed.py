"""Where the segmenter's time goes at real photo sizes, and its per-pixel head's two forms.

Times one training step (forward, loss, backward) and one prediction of a batch of 16 photos
of 180x240 (CamVid's size here) with the default RNNSegmenter module, side by side with the
same module whose upsampling and per-pixel classifier run as convolutions (how they ran
before they became matrix products on channel-last pixels; same weights, same outputs to
float rounding). Best of ``--repeats`` round-robin runs. ``--profile`` also prints torch's
profile of one training step.

    python benchmarks/segmenter_speed.py [--height 180 --width 240 --batch 16 --profile]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.nn import functional as F

from skrnn._renet import ReSegModel
from skrnn.sequence import patch_grid


class ConvolutionHead(ReSegModel):
    """The same module, with the upsampling and the classifier run as convolutions."""

    def forward(self, images):
        height, width = images.shape[1:3]
        pixels = self.standardize(images)
        features = self.dropout(self.sweeps(patch_grid(pixels, self.patch_size)))
        upsampled = torch.relu(self.upsample(features.permute(0, 3, 1, 2)))
        upsampled = upsampled[:, :, :height, :width]
        return self.classifier(torch.cat([upsampled, pixels.permute(0, 3, 1, 2)], dim=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=240)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    params = dict(
        n_channels=3,
        n_outputs=12,
        cell="gru",
        hidden_size=32,
        num_layers=2,
        bidirectional=True,
        dropout=0.0,
        patch_size=(2, 2),
        head=(32,),
    )
    matrix = ReSegModel(**params)
    convolution = ConvolutionHead(**params)
    convolution.load_state_dict(matrix.state_dict())
    images = torch.rand(args.batch, args.height, args.width, 3)
    masks = torch.randint(0, 12, (args.batch, args.height, args.width))
    with torch.no_grad():
        gap = (matrix(images[:2]) - convolution(images[:2])).abs().max().item()

    def train_step(module):
        module.zero_grad()
        F.cross_entropy(module(images), masks).backward()

    def predict(module):
        with torch.inference_mode():
            module(images)

    contenders = {"matrix-product head (skrnn)": matrix, "convolution head": convolution}
    times = {name: ([], []) for name in contenders}
    for module in contenders.values():
        train_step(module)  # warm-up
    for _ in range(args.repeats):
        for name, module in contenders.items():
            start = time.perf_counter()
            train_step(module)
            times[name][0].append(time.perf_counter() - start)
            start = time.perf_counter()
            predict(module)
            times[name][1].append(time.perf_counter() - start)

    print(
        f"{args.batch} images of {args.height}x{args.width}, {torch.get_num_threads()} threads; "
        f"largest output difference between the two heads: {gap:.1e}"
    )
    print(f"{'module':<30} {'train step s':>13} {'predict s':>10} {'predict images/s':>17}")
    for name, (train, inference) in times.items():
        print(
            f"{name:<30} {min(train):>13.2f} {min(inference):>10.2f} "
            f"{args.batch / min(inference):>17.1f}"
        )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            train_step(matrix)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
