"""Latency per clip of MVFNet MobileNetV2 in Keras and in LiteRT (float32, float16, int8).

Exports the MobileNetV2 MVF model (and its C2D twin) with `export_tflite`,
then times one clip per call, in interleaved rounds, in Keras (a compiled
`tf.function`) and in the LiteRT interpreter (XNNPACK) with the same number of
threads. Prints median milliseconds per clip, each engine's ratio to Keras, and
MVF against C2D in LiteRT. Weights are random, with BatchNorm statistics
settled on two of the calibration clips (`settle_batch_norm`); int8 is
calibrated on all of them.

    python -m keras_mvf.benchmark.tflite --frames 8 --size 224 --threads 2 --runs 15
"""

import argparse
import os
import tempfile

from keras_mvf.benchmark.models import interleaved_medians


def litert_function(path, clip, threads):
    """A zero-argument call running one clip through a .tflite model."""
    from ai_edge_litert.interpreter import Interpreter

    from keras_mvf.utils import logs

    with logs.stderr_hidden_when_quiet():  # LiteRT's line about its XNNPACK delegate
        interpreter = Interpreter(model_path=path, num_threads=threads)
        interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    target = interpreter.get_output_details()[0]["index"]

    def run():
        interpreter.set_tensor(source, clip)
        interpreter.invoke()
        return interpreter.get_tensor(target)

    return run


def settle_batch_norm(model, clips):
    """Sets every BatchNorm's moving statistics to those of `model`'s activations on `clips`.

    A randomly initialised network's activations shrink layer by layer (to about
    1e-4 in MobileNetV2's last blocks), unlike a trained one's, whose BatchNorms
    keep them near unit scale. The scales decide which int8 ops XNNPACK takes
    (it refuses an addition of inputs whose scales differ too much), so an int8
    benchmark of unsettled random weights would time a graph no trained model has.
    """
    import keras

    norms = [
        norm
        for layer in model.layers
        for norm in (layer, getattr(layer, "bn", None))
        if isinstance(norm, keras.layers.BatchNormalization)
    ]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.momentum = 0.0  # the moving statistics become this batch's
    model(clips, training=True)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def export_models(directory, variants, frames, size, width, calibration_clips, seed=0):
    """Exports MobileNetV2 video models to `.tflite` files in `directory`.

    Args:
        variants: `{name: (registry model name, quantization)}`, e.g.
            `{"MVF int8": ("mvfnet_mobilenetv2", "int8")}`; each model is built
            once, with random weights and BatchNorm statistics settled on the
            first two calibration clips.
        frames, size, width: clip length, frame size and MobileNetV2 width multiplier.
        calibration_clips: random uint8 clips that calibrate int8 models.

    Returns:
        `{name: path}`.
    """
    import numpy as np

    from keras_mvf.export import export_tflite
    from keras_mvf.models.registry import create_model

    shape = (frames, size, size, 3)
    rng = np.random.default_rng(seed)
    calibration = rng.integers(0, 256, (calibration_clips, *shape), dtype=np.uint8)
    kwargs = {"num_frames": frames, "input_shape": shape[1:], "width_multiplier": width}
    names = {name for name, _ in variants.values()}
    models = {name: create_model(name, **kwargs) for name in names}
    for model in models.values():
        settle_batch_norm(model, calibration[:2])  # training-mode activations of 2 clips: ~1 GiB
    paths = {}
    for name, (model_name, quantization) in variants.items():
        paths[name] = os.path.join(directory, f"{model_name}_{quantization or 'float32'}.tflite")
        data = calibration if quantization == "int8" else None
        export_tflite(models[model_name], paths[name], quantization, data)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--size", type=int, default=224, help="frame height and width")
    parser.add_argument("--width", type=float, default=1.0, help="MobileNetV2 width multiplier")
    parser.add_argument(
        "--threads", type=int, default=2, help="threads of TensorFlow (intra-op) and LiteRT"
    )
    parser.add_argument("--runs", type=int, default=15, help="timed rounds after warm-up")
    parser.add_argument(
        "--calibration-clips", type=int, default=8, help="random clips that calibrate int8"
    )
    args = parser.parse_args(argv)

    import tensorflow as tf

    from keras_mvf.benchmark.models import random_clips
    from keras_mvf.models.registry import create_model

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    clip = random_clips(1, args.frames, args.size)[0]
    mvf = create_model(
        "mvfnet_mobilenetv2",
        num_frames=args.frames,
        input_shape=clip.shape[1:],
        width_multiplier=args.width,
    )
    call = tf.function(lambda x: mvf(x, training=False))
    batch = tf.constant(clip[None])
    functions = {"Keras float32": lambda: call(batch).numpy()}
    variants = {
        "LiteRT float32": ("mvfnet_mobilenetv2", None),
        "LiteRT float16": ("mvfnet_mobilenetv2", "float16"),
        "LiteRT int8": ("mvfnet_mobilenetv2", "int8"),
        "LiteRT float32, C2D": ("c2d_mobilenetv2", None),
        "LiteRT int8, C2D": ("c2d_mobilenetv2", "int8"),
    }
    with tempfile.TemporaryDirectory() as directory:
        paths = export_models(
            directory, variants, args.frames, args.size, args.width, args.calibration_clips
        )
        for name, path in paths.items():
            functions[name] = litert_function(path, clip, args.threads)
        medians = interleaved_medians(functions, args.runs)

    keras_time = medians["Keras float32"]
    print(
        f"MVFNet MobileNetV2 (width {args.width}), one clip of {args.frames}x{args.size}x"
        f"{args.size}, {args.threads} threads, median of {args.runs} runs"
    )
    print("| engine | median ms per clip | ratio to Keras |")
    print("|---|---|---|")
    for name, seconds in medians.items():
        if "C2D" not in name:
            print(f"| {name} | {seconds * 1e3:.1f} | {seconds / keras_time:.2f} |")
    print("\n| LiteRT | MVF ms | C2D ms | MVF / C2D |")
    print("|---|---|---|---|")
    for precision in ("float32", "int8"):
        ours, theirs = medians[f"LiteRT {precision}"], medians[f"LiteRT {precision}, C2D"]
        print(f"| {precision} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} | {ours / theirs:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
