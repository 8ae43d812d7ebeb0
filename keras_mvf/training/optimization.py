"""The release's optimiser in Keras: SGD, coupled L2 weight decay, warm-up and step decay.

How weight decay maps to Keras. The release uses PyTorch's `SGD(weight_decay=1e-4)`
on every parameter (mmcv builds the optimiser from `model.parameters()`, BatchNorm
and biases included). PyTorch adds `wd * w` to each gradient *before* momentum:

    g' = g + wd * w;   v = m * v + g';   w -= lr * (g' + m * v)   (nesterov)

which is the gradient of the loss plus `wd / 2 * ||w||^2`. Keras'
`SGD(weight_decay=wd)` is *decoupled* instead: it shrinks `w -= lr * wd * w` outside
the momentum buffer, so with momentum 0.9 the same number decays about
`1 / (1 - 0.9) = 10` times less, and no single value matches the release once the
learning rate changes. We therefore give every trainable variable the regulariser
`keras.regularizers.L2(wd / 2)`, whose gradient is exactly `wd * w` and goes through
momentum as in PyTorch. The one remaining difference: the release clips the
gradient norm (40) before adding the decay, Keras clips the sum.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_mvf import _compat

# The learning rates of the recipes are per this many clips (linear scaling rule).
REFERENCE_BATCH = 8


@keras.saving.register_keras_serializable(package="keras_mvf")
class WarmupStepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up followed by step decay, both counted in optimiser steps.

    During the first `warmup_steps` the rate rises linearly from
    `warmup_start * rate` to `rate` (mmcv's linear warm-up); the rate is
    multiplied by `decay` at each of `boundaries`.

    Args:
        learning_rate: float, the rate after warm-up and before the first decay.
        boundaries: sequence of int, steps at which the rate is multiplied by `decay`.
        decay: float, the factor at each boundary. Defaults to `0.1`.
        warmup_steps: int, length of the warm-up. Defaults to `0`.
        warmup_start: float, fraction of the rate the warm-up starts from.
            Defaults to `0.01`.
    """

    def __init__(self, learning_rate, boundaries, decay=0.1, warmup_steps=0, warmup_start=0.01):
        if learning_rate <= 0:
            raise ValueError(
                f"`learning_rate` must be positive. Received: learning_rate={learning_rate}"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"`boundaries` must be increasing. Received: boundaries={boundaries}")
        if warmup_steps < 0 or not 0 <= warmup_start <= 1:
            raise ValueError(
                "`warmup_steps` must be >= 0 and `warmup_start` in [0, 1]. "
                f"Received: warmup_steps={warmup_steps}, warmup_start={warmup_start}"
            )
        self.learning_rate = learning_rate
        self.boundaries = [int(b) for b in boundaries]
        self.decay = decay
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = warmup_start

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.learning_rate, "float32")
        for boundary in self.boundaries:
            rate = ops.where(step >= boundary, rate * self.decay, rate)
        if self.warmup_steps:
            progress = ops.minimum(step / self.warmup_steps, 1.0)
            rate = rate * (self.warmup_start + (1.0 - self.warmup_start) * progress)
        return rate

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "boundaries": self.boundaries,
            "decay": self.decay,
            "warmup_steps": self.warmup_steps,
            "warmup_start": self.warmup_start,
        }


@keras.saving.register_keras_serializable(package="keras_mvf")
class SGD(keras.optimizers.SGD):
    """Keras SGD whose `global_clipnorm` clips the gradient of the whole global batch.

    Under a `tf.distribute` strategy Keras clips each replica's share of the
    gradient before the replicas' shares are summed, which is not the clipping
    of the release (PyTorch DDP clips the averaged gradient) and makes a
    multi-device run differ from a single-device one. Here the shares are summed
    first to measure the global norm, and every share is scaled by the same
    factor; this costs one more all-reduce per step when clipping is on and
    there are several replicas. It overrides Keras' private
    `Optimizer._clip_gradients` (declared in `keras_mvf._compat`).
    """

    def __init__(self, *args, **kwargs):
        _compat.require(_compat.CLIP_GRADIENTS)
        super().__init__(*args, **kwargs)

    def _clip_gradients(self, grads):
        context = tf.distribute.get_replica_context()
        if self.global_clipnorm is None or context is None or context.num_replicas_in_sync == 1:
            return super()._clip_gradients(grads)
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, [g for g in grads if g is not None])
        norm = tf.linalg.global_norm(total)
        scale = tf.minimum(1.0, self.global_clipnorm / tf.maximum(norm, 1e-12))
        return [None if g is None else g * tf.cast(scale, g.dtype) for g in grads]


def make_optimizer(
    global_batch_size,
    steps_per_epoch,
    base_lr=0.01,
    momentum=0.9,
    nesterov=True,
    clip_norm=40.0,
    lr_steps=(),
    lr_decay=0.1,
    warmup_epochs=0,
    warmup_start=0.01,
):
    """SGD with the recipe's schedule; the rate is `base_lr` per 8 clips of global batch.

    Epoch-based settings (`lr_steps`, `warmup_epochs`) are turned into optimiser
    steps with `steps_per_epoch`. `clip_norm` clips the global gradient norm
    (0 or None to turn it off) over all replicas. Weight decay: see `add_weight_decay`.
    """
    if global_batch_size < 1 or steps_per_epoch < 1:
        raise ValueError(
            "`global_batch_size` and `steps_per_epoch` must be positive. Received: "
            f"global_batch_size={global_batch_size}, steps_per_epoch={steps_per_epoch}"
        )
    schedule = WarmupStepDecay(
        base_lr * global_batch_size / REFERENCE_BATCH,
        boundaries=[epoch * steps_per_epoch for epoch in lr_steps],
        decay=lr_decay,
        warmup_steps=round(warmup_epochs * steps_per_epoch),
        warmup_start=warmup_start,
    )
    return SGD(schedule, momentum=momentum, nesterov=nesterov, global_clipnorm=clip_norm or None)


def add_weight_decay(model, weight_decay):
    """Adds PyTorch-style (coupled) weight decay `weight_decay` to every trainable variable.

    Sets `keras.regularizers.L2(weight_decay / 2)` on each variable, so that the
    gradient of the total loss is the data gradient plus `weight_decay * w`, as
    with PyTorch's `SGD(weight_decay=...)`. The regularisers are not part of the
    saved model; `train()` sets them again when it resumes.
    """
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay}")
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    for variable in model.trainable_variables:
        variable.regularizer = regularizer
