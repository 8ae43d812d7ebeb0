"""`keras-mvf weights`."""


def register(subparsers):
    weights = subparsers.add_parser("weights", help="list the released pretrained checkpoints")
    weights.set_defaults(run=run_weights, tensorflow=False)


def run_weights(args):
    from keras_mvf.weights import presets

    for name in presets.list_weights():
        info = presets.weights_info(name)
        print(
            f"{name}\n    {info['description']}\n    url: {info['url']}\n"
            f"    sha256: {info['sha256'] or 'unknown (not recorded yet; not verified)'}"
        )
    return 0
