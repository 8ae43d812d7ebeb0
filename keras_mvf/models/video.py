"""Pieces every video model shares: input and normalisation, temporal modules, head, weights."""

import keras

from keras_mvf.layers import FoldFrames, MVFModule, TemporalShift, UnfoldFrames

# Per-channel (mean, std) on RGB 0..255 pixels for each weight convention.
NORMALISATION = {
    # Keras Applications ResNet ("caffe"): mean subtraction only; the BGR order
    # those weights expect is folded into the first conv when they are copied.
    "caffe": ((123.68, 116.779, 103.939), (1.0, 1.0, 1.0)),
    # Keras Applications MobileNetV2 ("tf"): scale to [-1, 1].
    "tf": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    # The released PyTorch checkpoints and torchvision ImageNet weights.
    "torch": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}

TEMPORAL_MODULES = ("mvf", "tsm", None)
DEFAULT_ALPHA = {"mvf": 0.125, "tsm": 0.25}


def check_video_args(num_frames, alpha, temporal_module, input_shape, pooling, include_top):
    """Validates the arguments every video model takes; returns the effective alpha."""
    if not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"`num_frames` must be a positive int. Received: num_frames={num_frames}")
    if temporal_module not in TEMPORAL_MODULES:
        raise ValueError(
            f"`temporal_module` must be one of {TEMPORAL_MODULES}. "
            f"Received: temporal_module={temporal_module!r}"
        )
    if alpha is None:
        alpha = DEFAULT_ALPHA.get(temporal_module, 0.0)
    if not 0 <= alpha <= 1:
        raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha}")
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(
            "`input_shape` is the shape of one RGB frame, (height, width, 3). "
            f"Received: input_shape={input_shape}"
        )
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if include_top and pooling is not None:
        raise ValueError(
            f"`pooling` applies only with include_top=False. Received: pooling={pooling!r}"
        )
    return alpha


def temporal_layer_factory(
    temporal_module, num_frames, alpha, views, share_weights, learnable_view_weights
):
    """Returns `make(name) -> layer` for the chosen temporal module, or None for C2D."""
    if temporal_module is None or alpha == 0:
        return None
    if temporal_module == "tsm":
        fold_div = round(2 / alpha)

        def make(name):
            return TemporalShift(num_frames, fold_div=fold_div, name=f"{name}_tsm")

        return make

    def make(name):
        return MVFModule(
            num_frames,
            alpha=alpha,
            views=views,
            share_weights=share_weights,
            learnable_view_weights=learnable_view_weights,
            name=f"{name}_mvf",
        )

    return make


def video_input(num_frames, input_shape, input_tensor, normalisation, include_preprocessing):
    """Clip input `(batch, frames, H, W, 3)` RGB 0..255 -> normalised frames
    `(batch * frames, H, W, 3)`."""
    shape = (num_frames, *input_shape)
    if input_tensor is None:
        inputs = keras.Input(shape=shape, name="clips")
    else:
        inputs = input_tensor
    x = FoldFrames(num_frames, channels=3, name="fold_frames")(inputs)
    if include_preprocessing:
        mean, std = NORMALISATION[normalisation]
        x = keras.layers.Normalization(
            mean=mean, variance=[s * s for s in std], name="preprocessing"
        )(x)
    return inputs, x


def video_head(x, num_frames, include_top, pooling, num_classes, dropout, classifier_activation):
    """Per-frame features -> clip output, TSN style: logits averaged over frames."""
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Dense(num_classes, name="predictions")(x)
        x = UnfoldFrames(num_frames, name="unfold_frames")(x)
        x = keras.layers.GlobalAveragePooling1D(name="temporal_avg")(x)
        return keras.layers.Activation(classifier_activation, dtype="float32", name="probs")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = UnfoldFrames(num_frames, name="unfold_frames")(x)
        return keras.layers.GlobalAveragePooling1D(name="temporal_avg")(x)
    if pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
        x = UnfoldFrames(num_frames, name="unfold_frames")(x)
        return keras.layers.GlobalMaxPooling1D(name="temporal_max")(x)
    return UnfoldFrames(num_frames, name="unfold_frames")(x)


def copy_application_weights(model, application, flip_input_channels):
    """Copies a Keras Applications model's weights into `model`, layer by layer by name.

    Every weighted layer of the application must have a same-named twin in the
    video model; the video model's own layers (MVF modules, head) keep theirs.
    With `flip_input_channels` the first conv is reversed along its input
    channels so that RGB clips feed weights trained on BGR images.
    """
    ours = {layer.name: layer for layer in model.layers}
    first = True
    for layer in application.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name not in ours:
            raise ValueError(
                f"The video model has no layer named {layer.name!r} to take the "
                f"{application.name} weights."
            )
        if first and flip_input_channels:
            weights[0] = weights[0][:, :, ::-1, :]
        first = False
        ours[layer.name].set_weights(weights)


def load_application(application_fn, backbone_weights, **kwargs):
    """Builds a headless Keras Applications model with `backbone_weights` ("imagenet" or a file)."""
    try:
        return application_fn(include_top=False, weights=backbone_weights, **kwargs)
    except Exception as error:
        if backbone_weights != "imagenet":
            raise
        raise RuntimeError(
            f"Could not get the Keras Applications ImageNet weights for "
            f"{application_fn.__name__} ({error}). Without network, pass "
            "backbone_weights=None for a randomly initialised backbone, or the path of "
            f"the {application_fn.__name__} no-top weights file downloaded elsewhere "
            "(backbone_weights='/path/to/..._notop.h5')."
        ) from error


def remember_config(model, backbone, **kwargs):
    """Records on `model` the registered name and the constructor arguments that rebuild it.

    `save_preset` writes them to a preset's config.json. The name is the
    family's registered model for `backbone` (`"50"`, `"101"` or
    `"_mobilenetv2"`); the arguments, which override its defaults, are every
    one that shapes the network, with the input shape and name of `model`.
    """
    family_name = family(kwargs["temporal_module"], kwargs["alpha"])
    kwargs.update(input_shape=tuple(model.input_shape[2:]), name=model.name)
    model.keras_mvf_config = {"model": f"{family_name}{backbone}", "kwargs": kwargs}


def family(temporal_module, alpha):
    """The model family a configuration builds: "mvfnet", "tsm" or "c2d"."""
    if temporal_module is None or alpha == 0:
        return "c2d"
    return "mvfnet" if temporal_module == "mvf" else "tsm"
