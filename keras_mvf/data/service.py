"""tf.data service servers, which read, decode and augment packed clips for trainers.

One dispatcher hands out work; workers on any number of hosts run the input
pipeline of `build_dataset(..., data_service="grpc://DISPATCHER:PORT")` and
stream finished clips to the trainers. `keras-mvf data serve` starts either.
"""

import socket

import tensorflow as tf


def _host_port(address):
    """`host:port` from `grpc://host:port` or `host:port`."""
    return address.split("://", 1)[-1]


def start_dispatcher(port=0):
    """Starts a dispatcher on `port` (0: a free one); its `target` is the address to give."""
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise ValueError(f"`port` must be an int in [0, 65536). Received: port={port}")
    config = tf.data.experimental.service.DispatcherConfig(port=port)
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(dispatcher, port=0, host=None):
    """Starts a worker for the dispatcher at `dispatcher` (`grpc://host:port` or `host:port`).

    Args:
        dispatcher: the dispatcher's address.
        port: the worker's port (0: a free one).
        host: the name trainers reach this worker by. Defaults to this
            machine's host name.
    """
    if "://" in dispatcher and not dispatcher.startswith("grpc://") or ":" not in dispatcher:
        raise ValueError(
            f"`dispatcher` must be an address `grpc://host:port` or `host:port`. "
            f"Received: {dispatcher!r}"
        )
    host = host or socket.gethostname()
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=_host_port(dispatcher), worker_address=f"{host}:%port%", port=port
    )
    return tf.data.experimental.service.WorkerServer(config)
