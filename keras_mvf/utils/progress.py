"""How Keras shows progress: a bar on a terminal, plain lines in a pipe or a file."""

import sys


def progress_verbosity():
    """Keras `verbose` for progress: 1 on a terminal, else 2.

    1 redraws a bar in place with backspaces, carriage returns and ANSI colours,
    which a pipe or a log file keeps as they are; 2 writes one plain line per
    epoch (`model.fit`) or when a `keras.utils.Progbar` finishes.
    """
    return 1 if sys.stdout.isatty() else 2
