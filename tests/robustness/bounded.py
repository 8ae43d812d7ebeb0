"""Runs code on hostile input in a child process with bounded memory and time."""

import resource
import subprocess
import sys

GIB = 1 << 30


def run_bounded(code, *args, memory=2 * GIB, timeout=120, **kwargs):
    """Runs `python -c code args...` under an address-space limit and a timeout.

    Returns the `CompletedProcess` (text output captured). A child that exceeds
    `memory` fails its allocation (MemoryError) instead of swapping the machine;
    one that runs past `timeout` raises `subprocess.TimeoutExpired`. Importing
    TensorFlow alone reserves several GiB of address space: give such children
    `memory=8 * GIB` or more.
    """

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
