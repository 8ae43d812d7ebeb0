"""Inference time of MVFNet against C2D (and TSM) on the same backbone.

Runs the models in turn, round after round, so that machine noise hits all of
them alike, and prints the median time per clip and each model's ratio to C2D.

    python -m keras_mvf.benchmark.models --frames 8 --size 224 --runs 7
"""

import argparse
import statistics
import time


def interleaved_medians(functions, runs, warmup=2):
    """Median seconds of each zero-argument function, timed in interleaved rounds."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(runs):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def inference_functions(names, frames, size, batch, jit_compile=False):
    """A compiled inference call per registered model name, on one random batch of clips."""
    import numpy as np
    import tensorflow as tf

    from keras_mvf.models.registry import create_model

    clips = tf.constant(
        np.random.default_rng(0).uniform(0, 255, (batch, frames, size, size, 3)), tf.float32
    )
    functions = {}
    for name in names:
        model = create_model(name, num_frames=frames, input_shape=(size, size, 3))
        call = tf.function(lambda x, model=model: model(x, training=False), jit_compile=jit_compile)
        functions[name] = lambda call=call: call(clips).numpy()
    return functions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["c2d50", "mvfnet50", "tsm50"])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--xla", action="store_true", help="compile with XLA")
    args = parser.parse_args(argv)

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
