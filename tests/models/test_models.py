import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_mvf
from keras_mvf.layers import MVFModule, TemporalShift
from keras_mvf.layers.channel_split import SplitChannels
from keras_mvf.training.optimization import make_optimizer

FRAMES, SIZE, CLASSES = 4, 32, 5


def tiny_resnet(**kwargs):
    return keras_mvf.ResNetVideo(
        (1, 1, 1, 1),
        **{
            "num_classes": CLASSES,
            "num_frames": FRAMES,
            "input_shape": (SIZE, SIZE, 3),
            "base_width": 8,
            **kwargs,
        },
    )


def tiny_mobilenet(**kwargs):
    return keras_mvf.MobileNetV2Video(
        **{
            "num_classes": CLASSES,
            "num_frames": FRAMES,
            "input_shape": (SIZE, SIZE, 3),
            "width_multiplier": 0.35,
            **kwargs,
        },
    )


def clips(batch=2, frames=FRAMES, size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(batch, frames, size, size, 3)).astype("float32")


@pytest.mark.parametrize("name", keras_mvf.list_models())
def test_every_registered_model_builds_and_runs(name):
    model = keras_mvf.create_model(
        name, num_frames=2, num_classes=CLASSES, input_shape=(SIZE, SIZE, 3)
    )
    probs = keras.ops.convert_to_numpy(model(clips(frames=2)))
    assert probs.shape == (2, CLASSES)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "layer_class", "count"),
    [
        ("mvfnet50", MVFModule, 6 + 3),
        ("mvfnet101", MVFModule, 23 + 3),
        ("tsm50", TemporalShift, 3 + 4 + 6 + 3),
        ("mvfnet_mobilenetv2", MVFModule, 10),
        ("c2d50", MVFModule, 0),
    ],
)
def test_temporal_modules_sit_where_spec_says(name, layer_class, count):
    model = keras_mvf.create_model(name, num_frames=2, input_shape=(SIZE, SIZE, 3))
    found = [layer for layer in model.layers if isinstance(layer, layer_class)]
    assert len(found) == count
    for layer in found:
        # The module feeds the block's first (1x1 expansion) conv (as channel pieces in res4-5).
        output = [id(tensor) for tensor in keras.tree.flatten(layer.output)]
        consumer = next(
            other
            for other in model.layers
            if [id(tensor) for tensor in keras.tree.flatten(getattr(other, "input", []))] == output
        )
        assert consumer.name.endswith(("_1_conv", "expand")), consumer.name


@pytest.mark.parametrize(
    ("stages", "splits", "merges"),
    [
        ((4, 5), ["conv4_block1_split"], ["conv5_block3_merge"]),
        (
            (3, 5),
            ["conv3_block1_split", "conv5_block1_split"],
            ["conv3_block4_merge", "conv5_block3_merge"],
        ),
    ],
)
@pytest.mark.parametrize(("name", "module"), [("mvfnet50", MVFModule), ("tsm50", TemporalShift)])
def test_resnet_activations_stay_split_between_temporal_blocks(
    stages, splits, merges, name, module
):
    # Speed: a stage of MVF (or TSM) blocks splits its input once and merges its output
    # once, instead of every module slicing and concatenating the whole tensor.
    model = keras_mvf.create_model(name, num_frames=2, input_shape=(SIZE, SIZE, 3), stages=stages)
    modules = [layer for layer in model.layers if isinstance(layer, module)]
    assert modules and all(isinstance(layer.input, list) for layer in modules)
    assert [layer.name for layer in model.layers if isinstance(layer, SplitChannels)] == splits
    concatenations = [
        layer.name for layer in model.layers if isinstance(layer, keras.layers.Concatenate)
    ]
    assert concatenations == merges


def test_mobilenet_modules_only_in_residual_expansion_blocks():
    model = keras_mvf.create_model("mvfnet_mobilenetv2", num_frames=2, input_shape=(SIZE, SIZE, 3))
    blocks = sorted(
        int(layer.name.split("_")[1]) for layer in model.layers if isinstance(layer, MVFModule)
    )
    assert blocks == [2, 4, 5, 7, 8, 9, 11, 12, 14, 15]


@pytest.mark.parametrize("build", [tiny_resnet, tiny_mobilenet])
def test_c2d_is_the_mean_of_per_frame_logits(build):
    video = build(temporal_module=None, classifier_activation=None)
    single = build(temporal_module=None, classifier_activation=None, num_frames=1)
    rng = np.random.default_rng(0)
    video.set_weights(
        [rng.normal(0, 0.3, w.shape).astype("float32") + (w > 0) for w in video.get_weights()]
    )
    single.set_weights(video.get_weights())
    x = clips()
    per_frame = np.stack([single(x[:, t : t + 1], training=False) for t in range(FRAMES)])
    np.testing.assert_allclose(
        video(x, training=False), per_frame.mean(axis=0), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("build", [tiny_resnet, tiny_mobilenet])
def test_alpha_zero_is_c2d(build):
    assert not any(isinstance(layer, (MVFModule, TemporalShift)) for layer in build(alpha=0).layers)
    assert build(alpha=0).name.startswith("c2d")


@pytest.mark.parametrize("module", ["mvf", "tsm", None])
def test_only_temporal_models_see_frame_order(module):
    model = tiny_resnet(
        temporal_module=module, alpha=0.5 if module == "mvf" else None, classifier_activation=None
    )
    x = clips(batch=1)
    forward = keras.ops.convert_to_numpy(model(x, training=False))
    backward = keras.ops.convert_to_numpy(model(x[:, ::-1], training=False))
    assert np.allclose(forward, backward, atol=1e-5) == (module is None)


def test_output_shapes_of_the_pooling_options():
    x = clips()
    assert tiny_resnet(include_top=False, pooling="avg")(x).shape == (2, 256)
    assert tiny_resnet(include_top=False, pooling="max")(x).shape == (2, 256)
    assert tiny_resnet(include_top=False)(x).shape == (2, FRAMES, 1, 1, 256)
    assert tiny_mobilenet(include_top=False, pooling="avg")(x).shape == (2, 1280)


def test_any_frame_size_with_none_input_shape():
    model = tiny_resnet(input_shape=(None, None, 3))
    assert model(clips(size=48)).shape == (2, CLASSES)
    assert model(clips(size=64)).shape == (2, CLASSES)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"alpha": -0.1}, "alpha=-0.1"),
        ({"num_frames": 0}, "num_frames=0"),
        ({"input_shape": (32, 32, 4)}, "input_shape=(32, 32, 4)"),
        ({"temporal_module": "tam"}, "temporal_module='tam'"),
        ({"layout": "caffe"}, "layout='caffe'"),
        ({"stages": (1, 4)}, "stages=(1, 4)"),
        ({"include_top": True, "pooling": "avg"}, "pooling='avg'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, argument):
    with pytest.raises(ValueError, match=argument.replace("(", r"\(").replace(")", r"\)")):
        tiny_resnet(**kwargs)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 3, SIZE, SIZE, 3), "found shape=\\(2, 3"),
        ((2, FRAMES, SIZE, SIZE, 1), "expects 3 channels.*have 1"),
    ],
)
def test_clips_of_the_wrong_shape_are_refused(shape, message):
    with pytest.raises(ValueError, match=message):
        tiny_resnet()(np.zeros(shape, "float32"))


def test_fold_frames_names_the_frame_count():
    with pytest.raises(ValueError, match="num_frames=4.*3 frames"):
        keras_mvf.layers.FoldFrames(4, channels=3)(np.zeros((1, 3, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="3 channels"):
        keras_mvf.layers.FoldFrames(4, channels=3)(np.zeros((1, 4, 8, 8, 1), "float32"))


def test_imagenet_on_pytorch_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="layout='pytorch'"):
        keras_mvf.MVFNet50(layout="pytorch", backbone_weights="imagenet")


@pytest.mark.slow
def test_dot_keras_loads_in_a_fresh_process_with_safe_mode(tmp_path):
    model = tiny_resnet(learnable_view_weights=True, views="th")
    # Compiled as `train` compiles: the file names keras_mvf's optimizer and schedule too.
    model.compile(make_optimizer(8, 10, warmup_epochs=1), "sparse_categorical_crossentropy")
    path = tmp_path / "model.keras"
    model.save(path)
    x = clips()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    script = (
        "import sys, numpy as np, keras, keras_mvf\n"
        "d = sys.argv[1]\n"
        "m = keras.models.load_model(d + '/model.keras', safe_mode=True)\n"
        "assert type(m.optimizer).__module__ == 'keras_mvf.training.optimization'\n"
        "y = m(np.load(d + '/x.npy'), training=False)\n"
        "np.testing.assert_allclose(keras.ops.convert_to_numpy(y), np.load(d + '/y.npy'),"
        " atol=1e-6)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("build", [tiny_resnet, tiny_mobilenet])
def test_mixed_precision(policy, build):
    x = clips()
    reference = build(dropout=0)
    expected = keras.ops.convert_to_numpy(reference(x, training=False))
    keras.config.set_dtype_policy(policy)
    try:
        mixed = build(dropout=0)
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(reference.get_weights())
    probs = mixed(x, training=False)
    assert keras.backend.standardize_dtype(probs.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(probs), expected, atol=0.02)
    batch_norms = [w for w in mixed.weights if "moving" in w.path]
    assert batch_norms and all(w.dtype == "float32" for w in batch_norms)
    mixed.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    mixed.optimizer.build(mixed.trainable_variables)  # as `train()` does: one trace, not two
    history = mixed.fit(x, np.array([0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.slow
def test_trains_with_fit():
    model = tiny_resnet(alpha=0.5)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy"
    )
    # Conv biases feed BatchNorm, which cancels their gradient: every other weight must move.
    weights = [w for w in model.trainable_weights if not w.path.endswith("_conv/bias")]
    before = [w.numpy().copy() for w in weights]
    model.fit(clips(), np.array([1, 3]), epochs=2, verbose=0)
    unchanged = [w.path for a, w in zip(before, weights, strict=True) if np.allclose(a, w.numpy())]
    assert not unchanged


def test_registry_resnets_take_block_counts():
    model = keras_mvf.create_model(
        "tsm50",
        block_counts=(1, 1, 1, 1),
        num_frames=2,
        num_classes=CLASSES,
        input_shape=(SIZE, SIZE, 3),
    )
    assert sum(isinstance(layer, TemporalShift) for layer in model.layers) == 4
