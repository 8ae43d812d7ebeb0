"""MVFNet, TSM and C2D on ResNet-50/101 backbones."""

import keras
from keras import layers

from keras_mvf.layers.channel_split import (
    ChannelSplitBatchNormalization,
    ChannelSplitConv2D,
    SplitChannels,
)
from keras_mvf.models import video

LAYOUTS = ("keras", "pytorch")
# Blocks per stage res2..res5.
RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def _conv(x, filters, kernel_size, stride, layout, name, output_splits=None):
    """A conv whose stride-2 padding is symmetric in the "pytorch" layout, as PyTorch pads.

    Channel pieces in (a list) or out (`output_splits`) take a `ChannelSplitConv2D`.
    """
    if stride > 1 and kernel_size > 1 and layout == "pytorch":
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    split = isinstance(x, list) or output_splits is not None
    conv = ChannelSplitConv2D if split else layers.Conv2D
    kwargs = {"output_splits": output_splits} if split else {}
    return conv(
        filters,
        kernel_size,
        strides=stride,
        padding=padding,
        use_bias=layout == "keras",
        name=f"{name}_conv",
        **kwargs,
    )(x)


def _batch_norm(x, layout, name):
    # Keras Applications' ResNet uses eps 1.001e-5; the PyTorch release uses 1e-5.
    epsilon = 1.001e-5 if layout == "keras" else 1e-5
    norm = ChannelSplitBatchNormalization if isinstance(x, list) else layers.BatchNormalization
    return norm(epsilon=epsilon, momentum=0.9, name=f"{name}_bn")(x)


def channel_pieces(channels, module):
    """`[processed, passed]` channel counts of a temporal module (MVF or TSM) on
    `channels`, or None if one would be empty."""
    processed = module.processed_channels(channels)
    return [processed, channels - processed] if 0 < processed < channels else None


def bottleneck_block(x, filters, stride, conv_shortcut, temporal, layout, name, stay_split=False):
    """ResNet bottleneck block, with an optional temporal module before its first conv.

    The "keras" layout strides the first 1x1 conv (Keras Applications); the
    "pytorch" layout strides the 3x3 conv (torchvision and the MVFNet release).
    A block with a temporal module keeps its input as channel pieces
    `[processed, passed]` (it may receive them so), and with `stay_split`
    returns its output as such pieces for the next block's module; see
    `keras_mvf.layers.channel_split`.
    """
    module = temporal(name) if temporal is not None else None
    if module is not None and not isinstance(x, list):
        split = channel_pieces(x.shape[-1], module)
        if split is not None:
            x = SplitChannels(split, name=f"{name}_split")(x)
    output_splits = channel_pieces(4 * filters, module) if stay_split else None
    if conv_shortcut:
        shortcut = _conv(x, 4 * filters, 1, stride, layout, f"{name}_0", output_splits)
        shortcut = _batch_norm(shortcut, layout, f"{name}_0")
    else:
        shortcut = x
    if module is not None:
        x = module(x)
    stride1, stride3 = (stride, 1) if layout == "keras" else (1, stride)
    x = _conv(x, filters, 1, stride1, layout, f"{name}_1")
    x = _batch_norm(x, layout, f"{name}_1")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = _conv(x, filters, 3, stride3, layout, f"{name}_2")
    x = _batch_norm(x, layout, f"{name}_2")
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = _conv(x, 4 * filters, 1, 1, layout, f"{name}_3", output_splits)
    x = _batch_norm(x, layout, f"{name}_3")
    if output_splits is None:
        if isinstance(shortcut, list):
            shortcut = layers.Concatenate(name=f"{name}_merge")(shortcut)
        x = layers.Add(name=f"{name}_add")([shortcut, x])
        return layers.Activation("relu", name=f"{name}_out")(x)
    pieces = zip(shortcut, x, strict=True)
    return [
        layers.Activation("relu", name=f"{name}_out{i}")(
            layers.Add(name=f"{name}_add{i}")([piece_shortcut, piece])
        )
        for i, (piece_shortcut, piece) in enumerate(pieces)
    ]


def ResNetVideo(
    block_counts,
    num_classes=400,
    num_frames=8,
    alpha=None,
    stages=(4, 5),
    views="thw",
    share_weights=False,
    learnable_view_weights=False,
    temporal_module="mvf",
    dropout=0.5,
    include_top=True,
    pooling=None,
    classifier_activation="softmax",
    weights=None,
    backbone_weights=None,
    include_preprocessing=True,
    layout=None,
    input_shape=(224, 224, 3),
    input_tensor=None,
    base_width=64,
    name=None,
):
    """Builds a video ResNet: MVFNet, TSM or C2D on a 2D ResNet applied to every frame.

    Args:
        block_counts: blocks per stage res2..res5, e.g. `(3, 4, 6, 3)` for ResNet-50.
        num_classes: int, classes of the classifier. Defaults to `400`.
        num_frames: int, frames per clip. Defaults to `8`.
        alpha: float in [0, 1], fraction of channels the temporal module processes;
            0 builds C2D. Defaults to 1/8 for MVF and 1/4 for TSM.
        stages: ResNet stages (2-5) whose blocks get a temporal module. Defaults
            to `(4, 5)`.
        views, share_weights, learnable_view_weights: see `MVFModule`.
        temporal_module: `"mvf"`, `"tsm"` or None (C2D). Defaults to `"mvf"`.
        dropout: float, dropout rate before the classifier. Defaults to `0.5`.
        include_top: bool, include the classifier. Defaults to `True`.
        pooling: None, `"avg"` or `"max"` with `include_top=False`: pool features
            over space and frames; None returns per-frame maps
            `(batch, frames, h, w, channels)`.
        classifier_activation: activation of the top layer. Defaults to `"softmax"`.
        weights: None, `"kinetics400"` (the release for this depth and frame
            count), a name from `keras_mvf.list_weights()`, a preset
            directory, a released `.pth` file or a `.weights.h5` or `.keras`
            file for the whole model, loaded strictly (see
            `keras_mvf.models.pretrained.load_weights`). A different
            `num_classes` than the checkpoint's gives a new classifier
            (fine-tuning). Overrides `backbone_weights`.
        backbone_weights: `"imagenet"` (Keras Applications, "keras" layout),
            None, a path to a Keras Applications weights file, or for the
            "pytorch" layout `"resnet50_imagenet"` / `"resnet101_imagenet"`
            (the release's torchvision ImageNet ResNets) or a torchvision-layout
            `.pth` file. Defaults to None here; the public factories default to
            `"imagenet"`.
        include_preprocessing: bool, normalise RGB 0..255 inside the model with
            the convention of the weights. Defaults to `True`.
        layout: `"keras"` (Keras Applications) or `"pytorch"` (released
            checkpoints). Defaults to the layout of the weights, else `"keras"`.
        input_shape: shape of one frame; height and width may be None.
            Defaults to `(224, 224, 3)`.
        input_tensor: optional Keras tensor `(batch, frames, H, W, 3)` to use as input.
        base_width: int, filters of the first stage. Defaults to `64`.
        name: model name.

    Returns:
        A `keras.Model` mapping clips `(batch, frames, H, W, 3)` to class
        probabilities `(batch, num_classes)`.
    """
    alpha = video.check_video_args(
        num_frames, alpha, temporal_module, input_shape, pooling, include_top
    )
    from keras_mvf.models import pretrained  # it imports the registry, which imports this

    depth = pretrained.DEPTHS.get(tuple(block_counts))
    weights = pretrained.release_name(weights, depth, num_frames)
    layout, backbone_weights, torch_backbone_weights = pretrained.resolve_layout(
        layout, weights, backbone_weights
    )
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")
    if not set(stages) <= {2, 3, 4, 5}:
        raise ValueError(f"`stages` must be a subset of (2, 3, 4, 5). Received: stages={stages}")
    if backbone_weights == "imagenet" and layout != "keras":
        raise ValueError(
            "The Keras Applications ImageNet weights fit only layout='keras'; for the "
            "'pytorch' layout use the release's torchvision backbones, "
            "backbone_weights='resnet50_imagenet' or 'resnet101_imagenet'. "
            f"Received: layout={layout!r} with backbone_weights='imagenet'"
        )
    application = None
    if backbone_weights is not None:
        application_fn = {50: keras.applications.ResNet50, 101: keras.applications.ResNet101}.get(
            depth
        )
        if application_fn is None or base_width != 64:
            raise ValueError(
                "`backbone_weights` exist only for ResNet-50 and ResNet-101. "
                f"Received: block_counts={block_counts}, base_width={base_width}"
            )
        application = video.load_application(
            application_fn, backbone_weights, input_shape=input_shape
        )

    normalisation = "caffe" if layout == "keras" else "torch"
    inputs, x = video.video_input(
        num_frames, input_shape, input_tensor, normalisation, include_preprocessing
    )
    temporal = video.temporal_layer_factory(
        temporal_module, num_frames, alpha, views, share_weights, learnable_view_weights
    )

    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(base_width, 7, strides=2, use_bias=layout == "keras", name="conv1_conv")(x)
    x = _batch_norm(x, layout, "conv1")
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    blocks = [
        (stage, block, base_width * 2 ** (stage - 2))
        for stage, count in zip((2, 3, 4, 5), block_counts, strict=True)
        for block in range(1, count + 1)
    ]
    temporal_stages = set(stages) if temporal is not None else set()
    for i, (stage, block, filters) in enumerate(blocks):
        # Between temporal blocks the activations stay split, as the next module takes them.
        next_stage = blocks[i + 1][0] if i + 1 < len(blocks) else None
        stays_split = stage in temporal_stages and next_stage in temporal_stages
        x = bottleneck_block(
            x,
            filters,
            stride=2 if block == 1 and stage > 2 else 1,
            conv_shortcut=block == 1,
            temporal=temporal if stage in stages else None,
            layout=layout,
            name=f"conv{stage}_block{block}",
            stay_split=stays_split,
        )
    outputs = video.video_head(
        x, num_frames, include_top, pooling, num_classes, dropout, classifier_activation
    )
    layers_deep = 2 + 3 * sum(block_counts)
    name = name or f"{video.family(temporal_module, alpha)}_resnet{layers_deep}"
    model = keras.Model(inputs, outputs, name=name)
    video.remember_config(
        model,
        str(depth or 50),
        block_counts=tuple(block_counts),
        base_width=base_width,
        stages=tuple(stages),
        layout=layout,
        num_classes=num_classes,
        num_frames=num_frames,
        alpha=alpha,
        views=views,
        share_weights=share_weights,
        learnable_view_weights=learnable_view_weights,
        temporal_module=temporal_module,
        dropout=dropout,
        include_top=include_top,
        pooling=pooling,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
    )
    if application is not None:
        video.copy_application_weights(model, application, flip_input_channels=True)
    pretrained.load_weights(model, weights, torch_backbone_weights)
    return model


def MVFNet50(num_classes=400, num_frames=8, backbone_weights="imagenet", **kwargs):
    """MVFNet on ResNet-50 (paper defaults: alpha 1/8, MVF in res4-5).

    Takes every argument of `ResNetVideo`; `temporal_module=None` or `alpha=0`
    gives C2D and `temporal_module="tsm"` gives TSM.

    Example:

    >>> model = keras_mvf.MVFNet50(num_classes=400, backbone_weights=None)
    >>> model(clips).shape  # clips: (batch, 8, 224, 224, 3), RGB 0..255
    (batch, 400)
    """
    return ResNetVideo(
        (3, 4, 6, 3), num_classes, num_frames, backbone_weights=backbone_weights, **kwargs
    )


def MVFNet101(num_classes=400, num_frames=8, backbone_weights="imagenet", **kwargs):
    """MVFNet on ResNet-101; arguments as `MVFNet50`."""
    return ResNetVideo(
        (3, 4, 23, 3), num_classes, num_frames, backbone_weights=backbone_weights, **kwargs
    )
