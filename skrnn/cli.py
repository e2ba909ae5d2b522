"""The ``skrnn`` command line (also ``python -m skrnn``)."""

from __future__ import annotations

import argparse
import sys


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(output=args.output, quiet=args.quiet, n_jobs=args.n_jobs, max_epochs=args.max_epochs)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skrnn", description="Recurrent neural networks over images, the scikit-learn way."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo = commands.add_parser(
        "demo",
        help="grid search over cells on the bundled digits",
        description=(
            "Grid search over the rnn, lstm and gru cells with 3-fold cross-validation on the "
            "bundled handwritten digits, then the held-out accuracy of the best cell and a "
            "figure of its confusion matrix and training curve."
        ),
    )
    demo.add_argument(
        "-o", "--output", default="skrnn_demo.png", help="where to save the figure (PNG)"
    )
    demo.add_argument("--n-jobs", type=int, default=None, help="parallel fits (default: all cores)")
    demo.add_argument("--max-epochs", type=int, default=25, help="epochs per fit (default: 25)")
    demo.add_argument("-q", "--quiet", action="store_true", help="print only the results")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
