"""Inference time of MVFNet against C2D (and TSM) on the same backbone.

Runs the models in turn, round after round, so that machine noise hits all of
them alike, and prints the median time per clip and each model's ratio to C2D.
The pieces (`interleaved_timings`, `inference_function`, `training_function`)
are what the suite (`keras-mvf benchmark`) times in its worker processes.

    python -m keras_mvf.benchmark.models --frames 8 --size 224 --runs 7
"""

import argparse
import statistics
import time


def stopwatch(function):
    """A zero-argument call that runs `function()` and returns the seconds it took."""

    def timed():
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    return timed


def interleaved_timings(timers, runs, warmup=2):
    """Median seconds of each timer (a zero-argument call returning seconds), in rounds.

    Every timer runs `warmup` untimed times, then once per round for `runs`
    rounds, so noise on the machine hits all of them alike.
    """
    for timer in timers.values():
        for _ in range(warmup):
            timer()
    times = {name: [] for name in timers}
    for _ in range(runs):
        for name, timer in timers.items():
            times[name].append(timer())
    return {name: statistics.median(values) for name, values in times.items()}


def interleaved_medians(functions, runs, warmup=2):
    """Median seconds of each zero-argument function, timed in interleaved rounds."""
    timers = {name: stopwatch(function) for name, function in functions.items()}
    return interleaved_timings(timers, runs, warmup)


def random_clips(batch, frames, size, seed=0):
    """float32 RGB 0..255 clips `(batch, frames, size, size, 3)`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (batch, frames, size, size, 3)).astype(np.float32)


def inference_function(model, clips, jit_compile=False):
    """A zero-argument compiled inference call of `model` on `clips`, waiting for the result."""
    import tensorflow as tf

    clips = tf.constant(clips)
    call = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    return lambda: call(clips).numpy()


def jax_inference_function(model, clips):
    """`inference_function` on the JAX backend: `model(clips, training=False)` compiled
    with `jax.jit` (XLA), its variables passed as arguments rather than baked in."""
    import jax

    clips = jax.numpy.asarray(clips)
    variables = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
    )
    call = jax.jit(lambda variables, x: model.stateless_call(*variables, x, training=False)[0])
    return lambda: call(variables, clips).block_until_ready()


def training_function(model, clips, jit_compile=False, seed=0):
    """A zero-argument training step (forward, backward, SGD update) of `model` on `clips`."""
    import keras
    import numpy as np

    labels = np.random.default_rng(seed).integers(0, model.output_shape[-1], len(clips))
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    model.optimizer.build(model.trainable_variables)  # as `train()` does: one trace, not two
    return lambda: model.train_on_batch(clips, labels)


def inference_functions(names, frames, size, batch, jit_compile=False):
    """A compiled inference call per registered model name, on one random batch of clips."""
    from keras_mvf.models.registry import create_model

    clips = random_clips(batch, frames, size)
    return {
        name: inference_function(
            create_model(name, num_frames=frames, input_shape=(size, size, 3)), clips, jit_compile
        )
        for name in names
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["c2d50", "mvfnet50", "tsm50"],
        help="registry models to time; ratios are to the first",
    )
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--size", type=int, default=224, help="frame height and width")
    parser.add_argument("--batch", type=int, default=1, help="clips per call")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds after warm-up")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--xla", action="store_true", help="compile with XLA")
    args = parser.parse_args(argv)
    from keras_mvf.cli import pooled_cpu_memory_by_default

    pooled_cpu_memory_by_default()  # as `keras-mvf benchmark` times the models
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    functions = inference_functions(args.models, args.frames, args.size, args.batch, args.xla)
    medians = interleaved_medians(functions, args.runs)
    baseline = medians[args.models[0]]
    print(
        f"Inference, batch {args.batch} x {args.frames}x{args.size}x{args.size}, "
        f"{args.threads} threads, XLA {'on' if args.xla else 'off'}, {args.runs} runs"
    )
    print(f"| model | median ms per batch | ratio to {args.models[0]} |")
    print("|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {seconds / baseline:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
