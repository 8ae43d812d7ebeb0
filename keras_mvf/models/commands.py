"""`keras-mvf models` and `keras-mvf flops`."""


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
