"""`keras-mvf weights` and `keras-mvf convert`."""

import re


def register(subparsers):
    weights = subparsers.add_parser("weights", help="list the released pretrained checkpoints")
    weights.set_defaults(run=run_weights, tensorflow=False)

    convert = subparsers.add_parser(
        "convert", help="convert a released PyTorch .pth checkpoint into a Keras .weights.h5 file"
    )
    convert.add_argument("checkpoint", help="a .pth file, or a name from `keras-mvf weights`")
    convert.add_argument("output", help="the .weights.h5 file to write")
    convert.add_argument(
        "--model",
        default=None,
        help="a name from `keras-mvf models`; inferred from the checkpoint by default",
    )
    convert.add_argument(
        "--frames",
        type=int,
        default=None,
        help="frames per clip of the model (the weights fit any) (default: from the file "
        "name, e.g. R50_8x8.pth, or 8)",
    )
    convert.set_defaults(run=run_convert)


def run_weights(args):
    from keras_mvf.weights import presets

    for name in presets.list_weights():
        info = presets.weights_info(name)
        print(
            f"{name}\n    {info['description']}\n    url: {info['url']}\n"
            f"    sha256: {info['sha256'] or 'unknown (not recorded yet; not verified)'}"
        )
    return 0


def run_convert(args):
    import os

    from keras_mvf.weights import loading, presets

    if not args.output.endswith(".weights.h5"):
        raise ValueError(f"The output must end in .weights.h5. Received: output={args.output!r}")
    checkpoint, frames = args.checkpoint, args.frames
    if checkpoint in presets.PRESETS:
        frames = frames or presets.PRESETS[checkpoint]["num_frames"]
        checkpoint = presets.download_checkpoint(checkpoint)
    elif not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"No such checkpoint file: {checkpoint}")
    if frames is None:
        match = re.search(r"_(\d+)x(\d+)", os.path.basename(checkpoint))
        frames = int(match.group(1)) if match else 8
    model = loading.convert_checkpoint(checkpoint, args.output, args.model, num_frames=frames)
    print(
        f"{args.checkpoint} -> {args.output}: {model.name}, {frames} frames, "
        f"{model.count_params() / 1e6:.2f}M parameters"
    )
    return 0
