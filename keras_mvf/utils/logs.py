"""Quiet start-up of the native libraries whose C++ logs ignore their log level."""

import contextlib
import os
import sys

# Errors only, for the libraries that read their log level from the environment: TensorFlow's
# C++ code, OpenCV, and the FFmpeg inside OpenCV (-8 is FFmpeg's AV_LOG_QUIET: a video it
# cannot read is an exception naming the file either way).
QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "OPENCV_LOG_LEVEL": "ERROR",
    "OPENCV_FFMPEG_LOGLEVEL": "-8",
}


def quiet_by_default():
    """Sets `QUIET_ENVIRONMENT`, keeping every variable the user has set already.

    Must run before the libraries are imported; the command line calls it
    unless `--verbose` is given.
    """
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def quiet():
    """Whether native logs below errors are unwanted: `TF_CPP_MIN_LOG_LEVEL` is set, not "0".

    The command line sets it to "3" (`quiet_by_default`) unless the user set it or
    passed `--verbose`.
    """
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") != "0"


@contextlib.contextmanager
def stderr_hidden_when_quiet():
    """Points file descriptor 2 to /dev/null for the block when `quiet()`.

    TensorFlow (through Abseil, while its libraries load) and LiteRT (when it
    creates the XNNPACK delegate) write informational lines to stderr whatever
    their log level; errors still reach Python as exceptions.
    """
    if not quiet():
        yield
        return
    sys.stderr.flush()
    stderr = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(stderr, 2)
        os.close(stderr)
