"""The state-dict mapping on tiny networks: numbers, fresh heads, backbones and clear errors."""

import keras
import numpy as np
import pytest
import torch

import keras_mvf
from keras_mvf.weights import convert_checkpoint, infer_model_kwargs, load_state_dict
from keras_mvf.weights.loading import h5_layout
from tests import torch_reference as ref

BLOCKS = (1, 1, 2, 2)
FRAMES = 4
CLASSES = 5


def _tiny_keras(**kwargs):
    keras.utils.set_random_seed(7)
    defaults = {
        "base_width": 8,
        "num_frames": FRAMES,
        "num_classes": CLASSES,
        "input_shape": (None, None, 3),
        "classifier_activation": None,
    }
    return keras_mvf.ResNetVideo(BLOCKS, **{**defaults, **kwargs})


@pytest.fixture(scope="module")
def tiny():
    """A tiny released-style network, its clips and logits, saved as zip and legacy `.pth`."""
    torch.manual_seed(0)
    net = ref.randomize(ref.MVFNet(BLOCKS, FRAMES, CLASSES, width=8), seed=1)
    clips = np.random.default_rng(0).uniform(0, 255, (2, FRAMES, 40, 40, 3)).astype("float32")
    with torch.no_grad():
        logits = net(ref.normalise(clips)).numpy()
    return net, clips, logits


def _save(net, path, zip_format=True):
    checkpoint = {"meta": {"epoch": 1}, "state_dict": net.state_dict()}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    return str(path)


def _assert_close(got, want):
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_pth_weights_match_pytorch(tiny, tmp_path, zip_format):
    net, clips, logits = tiny
    model = _tiny_keras(weights=_save(net, tmp_path / "tiny.pth", zip_format))
    assert not model.get_layer("conv1_conv").use_bias  # "pytorch" layout picked for .pth
    _assert_close(np.asarray(model(clips, training=False)), logits)


def test_converted_h5_fresh_head_and_headless(tiny, tmp_path):
    net, clips, logits = tiny
    output = str(tmp_path / "tiny.weights.h5")
    convert_checkpoint(_save(net, tmp_path / "tiny.pth"), output)
    assert h5_layout(output) == "pytorch"
    _assert_close(np.asarray(_tiny_keras(weights=output)(clips, training=False)), logits)

    # Another number of classes: a fresh classifier, as initialised without weights.
    tuned = _tiny_keras(weights=output, num_classes=3)
    fresh = _tiny_keras(num_classes=3, layout="pytorch")
    for kernel_a, kernel_b in zip(
        tuned.get_layer("predictions").get_weights(),
        fresh.get_layer("predictions").get_weights(),
        strict=True,
    ):
        np.testing.assert_array_equal(kernel_a, kernel_b)
    np.testing.assert_array_equal(
        tuned.get_layer("conv5_block2_3_conv").kernel.numpy(),
        net.backbone.layer4[1].conv3.weight.detach().numpy().transpose(2, 3, 1, 0),
    )

    # Without a head, from the .pth and from the .weights.h5: clip features of the release.
    with torch.no_grad():
        frames = ref.normalise(clips).flatten(0, 1)
        features = net.backbone(frames).mean(dim=(2, 3)).view(2, FRAMES, -1).mean(1).numpy()
    for weights in (str(tmp_path / "tiny.pth"), output):
        headless = _tiny_keras(weights=weights, include_top=False, pooling="avg")
        _assert_close(np.asarray(headless(clips, training=False)), features)


def test_fresh_head_from_pth(tiny, tmp_path):
    net, clips, _ = tiny
    tuned = _tiny_keras(weights=_save(net, tmp_path / "tiny.pth"), num_classes=11)
    fresh = _tiny_keras(num_classes=11, layout="pytorch")
    np.testing.assert_array_equal(
        tuned.get_layer("predictions").kernel.numpy(), fresh.get_layer("predictions").kernel.numpy()
    )
    assert tuned(clips, training=False).shape == (2, 11)


def test_torchvision_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = ref.randomize(ref.ResNet(BLOCKS, FRAMES, mvf_layers=(), width=8), seed=2)
    path = tmp_path / "resnet_tiny.pth"
    torch.save(ref.torchvision_state_dict(backbone), path)
    clips = np.random.default_rng(1).uniform(0, 255, (1, FRAMES, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        frames = ref.normalise(clips).flatten(0, 1)
        features = backbone(frames).mean(dim=(2, 3)).mean(0, keepdim=True).numpy()

    c2d = _tiny_keras(
        temporal_module=None, include_top=False, pooling="avg", backbone_weights=str(path)
    )
    assert not c2d.get_layer("conv1_conv").use_bias
    _assert_close(np.asarray(c2d(clips, training=False)), features)

    # An MVFNet takes the 2D backbone; its MVF modules and classifier stay as initialised.
    mvfnet = _tiny_keras(backbone_weights=str(path))
    fresh = _tiny_keras(layout="pytorch")
    for name in ("conv4_block1_mvf", "conv5_block2_mvf", "predictions"):
        for a, b in zip(
            mvfnet.get_layer(name).get_weights(), fresh.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        mvfnet.get_layer("conv4_block1_1_conv").kernel.numpy(),
        backbone.layer3[0].conv1.weight.detach().numpy().transpose(2, 3, 1, 0),
    )


def test_infer_model_kwargs(tiny):
    state = {k: v.numpy() for k, v in tiny[0].state_dict().items()}
    assert infer_model_kwargs(state) == {
        "block_counts": BLOCKS,
        "base_width": 8,
        "num_classes": CLASSES,
        "temporal_module": "mvf",
        "alpha": 0.125,
        "stages": (4, 5),
    }


def _state(net):
    return {key: value.numpy() for key, value in net.state_dict().items()}


def test_missing_leftover_and_misshapen_tensors_are_named(tiny):
    model = _tiny_keras(layout="pytorch")
    state = _state(tiny[0])
    missing = {k: v for k, v in state.items() if k != "backbone.layer3.0.conv1.h_conv.weight"}
    with pytest.raises(ValueError, match=r"missing 1 tensors \(backbone\.layer3\.0\.conv1\.h_conv"):
        load_state_dict(model, missing)
    with pytest.raises(ValueError, match=r"1 tensors left over \(backbone\.layer9\.weight\)"):
        load_state_dict(model, {**state, "backbone.layer9.weight": np.zeros(3)})
    # An alpha of 1/4 expects twice the channels in every MVF module.
    with pytest.raises(ValueError, match=r"layer3\.0\.conv1\.shift_conv\.weight' has shape"):
        load_state_dict(_tiny_keras(layout="pytorch", alpha=0.25), state)
    # H and W kernels swapped: their shapes tell them apart.
    swapped = {
        **state,
        "backbone.layer3.0.conv1.h_conv.weight": state["backbone.layer3.0.conv1.w_conv.weight"],
    }
    with pytest.raises(ValueError, match=r"h_conv.weight': expected a depthwise Conv3d"):
        load_state_dict(model, swapped)


def test_module_prefix_is_stripped(tiny, tmp_path):
    net, clips, logits = tiny
    wrapped = {f"module.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": wrapped}, tmp_path / "wrapped.pth")
    model = _tiny_keras(weights=str(tmp_path / "wrapped.pth"))
    _assert_close(np.asarray(model(clips, training=False)), logits)


def test_wrong_layout_or_family_is_refused(tiny, tmp_path):
    path = _save(tiny[0], tmp_path / "tiny.pth")
    with pytest.raises(ValueError, match="need layout='pytorch'. Received: layout='keras'"):
        _tiny_keras(weights=path, layout="keras")
    with pytest.raises(ValueError, match="built with layout='pytorch'"):
        load_state_dict(_tiny_keras(layout="keras"), _state(tiny[0]))
    with pytest.raises(ValueError, match="not a ResNet"):
        keras_mvf.MobileNetV2Video(
            width_multiplier=0.35, input_shape=(32, 32, 3), num_frames=FRAMES, weights=path
        )
    with pytest.raises(ValueError, match="MVFNet ResNet-50 and ResNet-101 only"):
        _tiny_keras(weights="kinetics400")
    with pytest.raises(ValueError, match="Received: weights='no_such_file.weights.h5'"):
        _tiny_keras(weights="no_such_file.weights.h5")
