"""Every private Keras (and TensorFlow) name keras_mvf relies on, declared and checked in
one place.

Keras keeps no promise about names that start with an underscore nor about the
layout of its `.weights.h5` files, and a rename would not always fail loudly:
an attribute assigned on a model or a method overridden in a subclass is then
simply never called. So each use is declared here, and checked when the
feature that needs it is used (not at `import keras_mvf`):

- `Model._maybe_symbolic_build` and `Model._symbolic_build`: replaced and
  called by `training.distribute.repair_multi_worker_fit` (multi-worker fit);
- `Optimizer._clip_gradients`: overridden by `training.optimization.SGD` to
  clip the gradient norm of the whole global batch;
- the `.weights.h5` layout, `layers/<layer class in snake case>[_<n>]/vars/<i>`:
  read by `weights.loading` (which ResNet layout a file holds, and the
  classifier's shape, to load weights under a classifier of another size);
- TensorFlow's `control_flow_util.GraphOrParentsInXlaContext`: whether the
  function being traced compiles with XLA (`compiling_with_xla`), which picks
  the MVF module's formulation.

A missing name or layout is an error naming the installed Keras and the tested
range (`TESTED_KERAS`, the range `pyproject.toml` requires). A Keras version
outside that range is not an error by itself: these checks, not the version
number, tell whether keras_mvf can work with it.
"""

import functools
import os
import tempfile
from typing import NamedTuple

import h5py
import keras

# The Keras versions keras_mvf is tested with; pyproject.toml requires the same.
TESTED_KERAS = ">=3.15,<3.16"


class Private(NamedTuple):
    """A private Keras attribute `name` of `owner`, and what keras_mvf uses it for."""

    owner: object
    name: str
    purpose: str


MAYBE_SYMBOLIC_BUILD = Private(
    keras.Model,
    "_maybe_symbolic_build",
    "multi-worker fit (replaced to build the model from this worker's first batch)",
)
SYMBOLIC_BUILD = Private(
    keras.Model, "_symbolic_build", "multi-worker fit (builds the model from a batch)"
)
CLIP_GRADIENTS = Private(
    keras.optimizers.Optimizer,
    "_clip_gradients",
    "SGD's clipping of the gradient norm of the whole global batch (overridden)",
)
PRIVATE_NAMES = (MAYBE_SYMBOLIC_BUILD, SYMBOLIC_BUILD, CLIP_GRADIENTS)


def _unsupported(what):
    return RuntimeError(
        f"keras_mvf needs {what}; Keras {keras.__version__} does not provide it. keras_mvf is "
        f"tested with Keras {TESTED_KERAS}: install one of those "
        f"(pip install 'keras{TESTED_KERAS}')."
    )


def require(private):
    """Raises a RuntimeError naming the Keras version if `private` does not exist."""
    if not hasattr(private.owner, private.name):
        owner = getattr(private.owner, "__name__", type(private.owner).__name__)
        raise _unsupported(f"Keras' private {owner}.{private.name} for {private.purpose}")


def replace_symbolic_build(model, build):
    """Makes `model.fit` and `model.evaluate` build `model` by calling `build`.

    `build(iterator=None, data_batch=None)` receives what Keras' own
    `_maybe_symbolic_build` would: the epoch iterator or one data batch.
    """
    require(MAYBE_SYMBOLIC_BUILD)
    require(SYMBOLIC_BUILD)
    model._maybe_symbolic_build = build


def symbolic_build(model, data_batch):
    """Builds `model`, its compiled metrics and optimizer from one data batch."""
    model._symbolic_build(data_batch=data_batch)


def compiling_with_xla():
    """Whether the function being traced now runs under XLA.

    Always on the JAX backend; on TensorFlow, inside a `tf.function` with
    `jit_compile=True` (also Keras' `compile(jit_compile=True)`), which enters
    an XLA context that TensorFlow keeps private. False in eager TensorFlow and
    on other backends.
    """
    backend = keras.backend.backend()
    if backend == "jax":
        return True
    if backend != "tensorflow":
        return False
    import tensorflow as tf

    return _graph_in_xla_context()(tf.compat.v1.get_default_graph())


@functools.cache
def _graph_in_xla_context():
    import tensorflow as tf
    from tensorflow.python.ops import control_flow_util

    name = "GraphOrParentsInXlaContext"
    if not hasattr(control_flow_util, name):
        raise RuntimeError(
            f"keras_mvf needs TensorFlow's private control_flow_util.{name} to tell whether "
            f"a function compiles with XLA; TensorFlow {tf.__version__} does not provide it. "
            "keras_mvf is tested with TensorFlow 2.21."
        )
    return getattr(control_flow_util, name)


def _vars(file, layer):
    return file.get(f"layers/{layer}/vars")


def check_weights_h5_layout(file):
    """Raises a RuntimeError unless the open h5 `file`, saved from a model of one
    `Dense(3)` on 2 inputs, holds its kernel and bias where `weights_h5_vars` looks."""
    variables = _vars(file, "dense") or {}
    shapes = [variables[i].shape if i in variables else None for i in ("0", "1")]
    if shapes != [(2, 3), (3,)]:
        raise _unsupported(
            "Keras' .weights.h5 layout (a model's first Dense layer's variables in "
            "`layers/dense/vars/0`, `/1`, ...) to read weight files"
        )


@functools.cache
def _check_written_layout():
    """Saves a one-Dense model and checks that Keras writes the layout we read.

    Its layers are named, so that they take no automatic layer name ("dense_1")
    from the user's layers.
    """
    model = keras.Sequential(
        [keras.Input((2,), name="probe_input"), keras.layers.Dense(3, name="probe_dense")],
        name="probe",
    )
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "probe.weights.h5")
        model.save_weights(path)
        with h5py.File(path, "r") as file:
            check_weights_h5_layout(file)


def weights_h5_vars(file, layer):
    """The variables group of a model's layer in an open `.weights.h5` file, or None.

    Keras names a model's layers in a `.weights.h5` file by class, in the order
    of `model.layers`: `layers/conv2d`, `layers/conv2d_1`, ... for its Conv2D
    layers, and keeps a layer's variables in `vars/0`, `vars/1`, ... in the
    order of `layer.weights`. `layer` is such a name, e.g. `"dense"` for the
    first Dense layer.
    """
    _check_written_layout()
    return _vars(file, layer)
