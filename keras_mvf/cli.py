"""The `keras-mvf` command line: one entry point, a subcommand per job.

Each module in `COMMAND_MODULES` defines `register(subparsers)`, which adds its
subcommands with `set_defaults(run=function)`; `function(args)` returns an exit
code and does its heavy imports itself.
"""

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "keras_mvf.models.commands",
    "keras_mvf.data.commands",
    "keras_mvf.weights.commands",
    "keras_mvf.export.commands",
    "keras_mvf.training.commands",
    "keras_mvf.benchmark.commands",
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="keras-mvf",
        description="MVFNet video recognition models for Keras 3 / TensorFlow.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"keras-mvf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
