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
        help="show TensorFlow's log lines on stderr (hidden by default)",
    )
    parser.set_defaults(tensorflow=True)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def quiet_tensorflow():
    """Imports TensorFlow with its C++ logs below errors and its start-up lines off stderr.

    TensorFlow logs through Abseil, which writes the lines it logs while the
    libraries load (oneDNN, CUDA, CPU features) to stderr whatever the log level,
    so file descriptor 2 points to /dev/null during the import. A
    `TF_CPP_MIN_LOG_LEVEL` set by the user is kept; set to 0, nothing is hidden.
    Nothing changes when TensorFlow is imported already (`main` called from Python).
    """
    if "tensorflow" in sys.modules or os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3") == "0":
        return
    sys.stderr.flush()
    stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.tensorflow and not args.verbose:
        quiet_tensorflow()
    try:
        return args.run(args) or 0
    except USER_ERRORS as error:
        message = " ".join(str(error).split()) or type(error).__name__  # on one line
        print(f"{args.prog}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
