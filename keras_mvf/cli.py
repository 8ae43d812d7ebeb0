"""The `keras-mvf` command line: one entry point, a subcommand per job.

Each module in `COMMAND_MODULES` defines `register(subparsers)`, which adds its
subcommands with `set_defaults(run=function)`; `function(args)` returns an exit
code and does its heavy imports itself, so `--help` and `--version` answer
without importing TensorFlow. A command that never imports TensorFlow says so
with `set_defaults(tensorflow=False)`; for the others, TensorFlow is imported
first with its start-up log lines kept off stderr (unless `--verbose`).
"""

import argparse
import importlib
import os
import sys

from keras_mvf import __version__
from keras_mvf.utils import logs

COMMAND_MODULES = (
    "keras_mvf.models.commands",
    "keras_mvf.data.commands",
    "keras_mvf.weights.commands",
    "keras_mvf.export.commands",
    "keras_mvf.training.commands",
    "keras_mvf.benchmark.commands",
)

# Errors of the user's input or files: one line on stderr and exit status 2.
USER_ERRORS = (OSError, ValueError, RuntimeError)

# TensorFlow's pooled (BFC) allocator for CPU memory. With the default one, glibc hands the
# large tensors of each call back to the system and the next call faults them in again:
# 3-8% of a batch-1 ResNet-50 inference on 2 cores, a different share in each process
# (docs/benchmarks.md).
SPEED_ENVIRONMENT = {"TF_CPU_ALLOCATOR_USE_BFC": "true"}


class HelpFormatter(argparse.HelpFormatter):
    """Appends each flag's default to its help, unless the help speaks of it already."""

    def _get_help_string(self, action):
        help = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, argparse.SUPPRESS)
            and not isinstance(default, bool)  # a switch
            and "(default" not in help
        ):
            help += " (default: %(default)s)"
        return help


class ArgumentParser(argparse.ArgumentParser):
    """The parser of `keras-mvf` and of its subcommands: defaults shown in the help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.set_defaults(prog=self.prog)  # the innermost command's, for error messages


def build_parser():
    parser = ArgumentParser(
        prog="keras-mvf",
        description="MVFNet video recognition models for Keras 3 / TensorFlow.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the log lines of TensorFlow, LiteRT, OpenCV and FFmpeg (hidden by default)",
    )
    parser.set_defaults(tensorflow=True)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def import_tensorflow():
    """Imports TensorFlow, its start-up lines off stderr unless logs are wanted (`--verbose`).

    Nothing changes when TensorFlow is imported already (`main` called from Python).
    """
    if "tensorflow" not in sys.modules:
        with logs.stderr_hidden_when_quiet():
            import tensorflow  # noqa: F401


def pooled_cpu_memory_by_default():
    """Sets `SPEED_ENVIRONMENT`, keeping every variable the user has set already.

    TensorFlow reads it when it first allocates, so it must run before that.
    """
    for name, value in SPEED_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    pooled_cpu_memory_by_default()
    if not args.verbose:
        logs.quiet_by_default()
    if args.tensorflow:
        import_tensorflow()
    try:
        return args.run(args) or 0
    except USER_ERRORS as error:
        message = " ".join(str(error).split()) or type(error).__name__  # on one line
        print(f"{args.prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
