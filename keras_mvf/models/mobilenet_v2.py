"""MVFNet, TSM and C2D on a MobileNetV2 backbone (Keras Applications layout)."""

import keras
from keras import layers

from keras_mvf.models import video

# (expansion, filters, repeats, first stride) of MobileNetV2's inverted-residual stages.
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value, divisor=8):
    """Rounds a channel count to a multiple of `divisor`, as MobileNetV2 does."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _batch_norm(name):
    return layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=name)


def inverted_residual_block(x, expansion, filters, stride, temporal, name):
    """Inverted residual block; a temporal module goes before the expansion conv of
    blocks that have both an expansion and an identity shortcut."""
    inputs = x
    in_channels = x.shape[-1]
    residual = stride == 1 and in_channels == filters
    if expansion != 1:
        if temporal is not None and residual:
            x = temporal(name.rstrip("_"))(x)
        x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{name}expand")(x)
        x = _batch_norm(f"{name}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{name}expand_relu")(x)
    if stride == 2:
        height, width = x.shape[1:3]
        pad = [(1, 1) if size is not None and size % 2 else (0, 1) for size in (height, width)]
        x = layers.ZeroPadding2D(pad, name=f"{name}pad")(x)
    x = layers.DepthwiseConv2D(
        3,
        strides=stride,
        padding="same" if stride == 1 else "valid",
        use_bias=False,
        name=f"{name}depthwise",
    )(x)
    x = _batch_norm(f"{name}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{name}depthwise_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}project")(x)
    x = _batch_norm(f"{name}project_BN")(x)
    if residual:
        x = layers.Add(name=f"{name}add")([inputs, x])
    return x


def MobileNetV2Video(
    num_classes=400,
    num_frames=8,
    alpha=None,
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
    input_shape=(224, 224, 3),
    input_tensor=None,
    width_multiplier=1.0,
    name=None,
):
    """Builds MVFNet, TSM or C2D on MobileNetV2 applied to every frame.

    Arguments as `ResNetVideo` (without `stages`, `layout`, `base_width`), plus
    `width_multiplier` (MobileNetV2's alpha: 0.35 to 1.4). Layer names are those
    of Keras Applications' MobileNetV2, whose ImageNet weights
    (`backbone_weights="imagenet"`) exist for width multipliers 0.35, 0.5, 0.75,
    1.0, 1.3 and 1.4.
    """
    alpha = video.check_video_args(
        num_frames, alpha, temporal_module, input_shape, pooling, include_top
    )
    if width_multiplier <= 0:
        raise ValueError(
            f"`width_multiplier` must be positive. Received: width_multiplier={width_multiplier}"
        )
    application = None
    if backbone_weights is not None:
        application = video.load_application(
            keras.applications.MobileNetV2,
            backbone_weights,
            alpha=width_multiplier,
            input_shape=input_shape if None not in input_shape else None,
        )

    inputs, x = video.video_input(
        num_frames, input_shape, input_tensor, "tf", include_preprocessing
    )
    temporal = video.temporal_layer_factory(
        temporal_module, num_frames, alpha, views, share_weights, learnable_view_weights
    )
    x = layers.Conv2D(
        make_divisible(32 * width_multiplier),
        3,
        strides=2,
        padding="same",
        use_bias=False,
        name="Conv1",
    )(x)
    x = _batch_norm("bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    block_id = 0
    for expansion, filters, repeats, stride in STAGES:
        for repeat in range(repeats):
            x = inverted_residual_block(
                x,
                expansion,
                make_divisible(int(filters * width_multiplier)),
                stride if repeat == 0 else 1,
                temporal,
                name=f"block_{block_id}_" if block_id else "expanded_conv_",
            )
            block_id += 1
    last = make_divisible(1280 * width_multiplier) if width_multiplier > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = _batch_norm("Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)
    outputs = video.video_head(
        x, num_frames, include_top, pooling, num_classes, dropout, classifier_activation
    )
    name = name or f"{video.family(temporal_module, alpha)}_mobilenetv2"
    model = keras.Model(inputs, outputs, name=name)
    video.remember_config(
        model,
        "_mobilenetv2",
        width_multiplier=width_multiplier,
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
        video.copy_application_weights(model, application, flip_input_channels=False)
    if weights is not None:
        from keras_mvf.models import pretrained  # it imports the registry, which imports this

        pretrained.load_weights(model, weights)
    return model


def MVFNetMobileNetV2(num_classes=400, num_frames=8, backbone_weights="imagenet", **kwargs):
    """MVFNet on MobileNetV2 (paper Table 1f); arguments as `MobileNetV2Video`."""
    return MobileNetV2Video(num_classes, num_frames, backbone_weights=backbone_weights, **kwargs)
