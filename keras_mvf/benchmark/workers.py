"""Worker processes for the benchmark suite: one subject (a model, an engine) per process.

Each subject runs in a child process of its own, so it gets a fresh runtime and
its own peak memory (`ru_maxrss`), while the parent asks the workers of a
comparison for one timed call each, round after round, one at a time. Workers
fork from a server that has already imported TensorFlow (but made no runtime
state), so starting one takes a fraction of a second instead of the seconds the
import takes. Importing TensorFlow also fixes Keras' backend, so a subject on
another backend (JAX) asks for a fresh interpreter instead.
"""

import multiprocessing
import resource
import sys
import traceback

from keras_mvf.benchmark.models import stopwatch


class WorkerError(RuntimeError):
    """A call failed inside a worker process; the message holds the worker's traceback."""


def _context(fresh_interpreter):
    if fresh_interpreter or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__, "keras_mvf.benchmark.preload"])
    return context


class Worker:
    """A child process that runs the module-level functions it is sent, one at a time.

    `start(function, *args)` sends a call and returns at once (so several
    workers can build their models in parallel), `result()` waits for its
    value, `call` does both. A failure in the worker raises `WorkerError`.
    `fresh_interpreter=True` starts a new Python instead of forking from the
    server that has imported TensorFlow: for Keras on another backend.
    """

    def __init__(self, fresh_interpreter=False):
        context = _context(fresh_interpreter)
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def start(self, function, *args):
        self._connection.send((function, args))

    def result(self):
        try:
            succeeded, value = self._connection.recv()
        except EOFError:
            raise WorkerError(
                f"The worker process exited (status {self._process.exitcode}) before answering"
            ) from None
        if not succeeded:
            raise WorkerError(value)
        return value

    def call(self, function, *args):
        self.start(function, *args)
        return self.result()

    def timer(self):
        """A zero-argument call: one timed run of the prepared subject; returns its seconds."""
        return lambda: self.call(run_prepared)

    def close(self):
        if self._process.is_alive():
            try:
                self._connection.send(None)
            except OSError:
                pass
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _serve(connection):
    # The parent owns stdout (the report); anything a worker prints goes to stderr.
    sys.stdout = sys.stderr
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        function, args = request
        try:
            reply = (True, function(*args))
        except Exception:
            reply = (False, traceback.format_exc())
        connection.send(reply)


# In a worker: the zero-argument call `prepare` built, which `run_prepared` times.
_prepared = {}


def prepare(factory, *args):
    """In a worker: builds the call to time with `factory(*args)` and runs it once, untimed.

    The first call is where TensorFlow traces and compiles, so it is not timed.
    """
    _prepared["call"] = factory(*args)
    _prepared["call"]()


def run_prepared():
    """In a worker: seconds one run of the prepared call takes."""
    return stopwatch(_prepared["call"])()


def tensorflow_pools_cpu_memory():
    """In a worker: whether TensorFlow takes CPU memory from a pool rather than from `malloc`.

    Only a pool keeps statistics. TensorFlow pools with `TF_CPU_ALLOCATOR_USE_BFC=true`, and
    with oneDNN's allocator wherever oneDNN is on: on Linux by default on CPUs with AVX-512 VNNI,
    AVX-512 BF16, AVX-VNNI or AMX (`TF_ENABLE_ONEDNN_OPTS` overrides that).
    """
    import tensorflow as tf

    with tf.device("CPU:0"):
        tf.zeros((256, 256))
    try:
        tf.config.experimental.get_memory_info("CPU:0")
    except ValueError:
        return False
    return True


def peak_memory(gpu=False):
    """In a worker: `(peak resident MiB of the process, peak TensorFlow GPU MiB or None)`.

    The GPU figure is read only with `gpu=True`, from a worker that ran TensorFlow on a GPU.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB
    if not gpu:
        return rss, None
    import tensorflow as tf

    return rss, tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
