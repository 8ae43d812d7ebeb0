"""`keras-mvf models`, `keras-mvf flops` and `keras-mvf convert`."""


def register(subparsers):
    models = subparsers.add_parser("models", help="list the registered models")
    models.set_defaults(run=run_models)

    flops = subparsers.add_parser(
        "flops", help="GFLOPs and parameters of a model, counted as the paper does"
    )
    flops.add_argument("--model", default="mvfnet50", help="a name from `keras-mvf models`")
    flops.add_argument("--frames", type=int, default=8, help="frames per clip")
    flops.add_argument("--size", type=int, default=224, help="frame height and width")
    flops.add_argument("--classes", type=int, default=400, help="number of classes")
    flops.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="fraction of channels in MVF (default: the model's)",
    )
    flops.add_argument(
        "--layout",
        choices=("keras", "pytorch"),
        default="pytorch",
        help="ResNet layout (the paper's figures are for 'pytorch')",
    )
    flops.set_defaults(run=run_flops)

    convert = subparsers.add_parser(
        "convert",
        help="convert a released PyTorch .pth checkpoint into a Keras preset directory",
    )
    convert.add_argument("checkpoint", help="a .pth file, or a name from `keras-mvf weights`")
    convert.add_argument(
        "output", help="the preset directory to write (config.json, model.weights.h5, ...)"
    )
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


def run_models(args):
    from keras_mvf.models.registry import MODELS

    width = max(map(len, MODELS))
    for name in sorted(MODELS):
        print(f"{name:<{width}}  {MODELS[name][1]}")
    return 0


def run_flops(args):
    from keras_mvf.models.registry import create_model
    from keras_mvf.utils import count_flops, count_params

    kwargs = {
        "num_frames": args.frames,
        "num_classes": args.classes,
        "input_shape": (args.size, args.size, 3),
    }
    if args.alpha is not None:
        kwargs["alpha"] = args.alpha
    if "mobilenet" not in args.model:
        kwargs["layout"] = args.layout
    model = create_model(args.model, **kwargs)
    print(
        f"{args.model}: {args.frames} frames x {args.size}x{args.size}: "
        f"{count_flops(model):.3f} GFLOPs, {count_params(model) / 1e6:.2f}M parameters"
    )
    return 0


def run_convert(args):
    import os

    from keras_mvf.models import pretrained
    from keras_mvf.weights import presets

    if args.output.endswith((".h5", ".keras", ".pth")):
        raise ValueError(
            "The output is a preset directory (config.json, model.weights.h5, labels.txt, ...), "
            f"not a file. Received: output={args.output!r}"
        )
    if args.checkpoint in presets.PRESETS and not os.path.exists(args.checkpoint):
        if args.model:
            raise ValueError(
                f"A release builds its own model: drop --model. Received: --model {args.model}"
            )
        model = pretrained.convert_release(args.checkpoint, args.output, args.frames)
    elif os.path.isfile(args.checkpoint):
        model = pretrained.convert_checkpoint(
            args.checkpoint, args.output, args.model, num_frames=args.frames
        )
    else:
        raise FileNotFoundError(f"No such checkpoint file: {args.checkpoint}")
    frames = model.input_shape[1]
    print(
        f"{args.checkpoint} -> {args.output}/: {model.keras_mvf_config['model']}, {frames} frames, "
        f"{model.count_params() / 1e6:.2f}M parameters"
    )
    return 0
