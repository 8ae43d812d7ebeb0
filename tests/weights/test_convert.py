"""The state-dict mapping on tiny networks: numbers, fresh heads, backbones and clear errors."""

import zipfile

import keras
import numpy as np
import pytest
import torch

import keras_mvf
from keras_mvf import cli
from keras_mvf.models.pretrained import convert_checkpoint
from keras_mvf.weights import infer_model_kwargs, load_state_dict
from keras_mvf.weights.loading import h5_layout
from keras_mvf.weights.pth import CheckpointError
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
    output = str(tmp_path / "tiny")  # a preset directory
    convert_checkpoint(_save(net, tmp_path / "tiny.pth"), output)
    assert h5_layout(tmp_path / "tiny" / "model.weights.h5") == "pytorch"
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


def test_torchvision_checkpoints_are_inferred_as_c2d(tmp_path):
    backbone = ref.ResNet(BLOCKS, FRAMES, mvf_layers=(), width=8)
    state = {k: v.numpy() for k, v in ref.torchvision_state_dict(backbone).items()}
    assert infer_model_kwargs(state) == {
        "block_counts": BLOCKS,
        "base_width": 8,
        "num_classes": 1000,
        "temporal_module": None,
        "alpha": 0.0,
        "stages": (4, 5),
    }


def _zeros(*shape):
    return np.zeros(shape, np.float32)


def test_inferred_architecture_and_every_shape_are_checked_before_building(tiny):
    state = _state(tiny[0])
    without = {k: v for k, v in state.items() if k != "backbone.layer2.0.bn1.running_var"}
    cases = [
        (
            {**state, "backbone.layer3.399.conv1.weight": _zeros(1, 1, 1, 1)},
            r"unexpected tensor 'backbone\.layer3\.399\.conv1\.weight': a ResNet has layer1 to "
            r"layer4, with at most 3, 4, 23, 3 blocks",
        ),
        (
            {**state, "backbone.layer5.0.conv1.weight": _zeros(1, 1, 1, 1)},
            r"unexpected tensor 'backbone\.layer5\.0\.conv1\.weight'",
        ),
        (
            {**state, "backbone.layer3.5.conv2.weight": _zeros(32, 32, 3, 3)},
            r"unexpected tensor 'backbone\.layer3\.5\.conv2\.weight': layer3 has no block 2",
        ),
        (
            {**state, "backbone.conv9.weight": _zeros(1)},
            r"unexpected tensor 'backbone\.conv9\.weight': no such tensor in a ResNet with "
            r"blocks \(1, 1, 2, 2\) and MVF in stages \(4, 5\)",
        ),
        (
            {**state, "backbone.conv1.weight": _zeros(0, 3, 7, 7)},
            r"'backbone\.conv1\.weight' of shape \(0, 3, 7, 7\) gives base width 0; "
            r"expected 1 to 64",
        ),
        (
            {**state, "cls_head.new_fc.weight": _zeros(10**9, 0)},
            r"'cls_head\.new_fc\.weight' of shape \(1000000000, 0\) gives classes 1000000000; "
            r"expected 1 to 100000",
        ),
        (
            {**state, "cls_head.new_fc.weight": _zeros(CLASSES, 0)},
            r"tensor 'cls_head\.new_fc\.weight' has shape \(5, 0\); expected \(5, 256\)",
        ),
        (
            {**state, "backbone.layer4.1.conv2.weight": _zeros(0, 64, 3, 3)},
            r"tensor 'backbone\.layer4\.1\.conv2\.weight' has shape \(0, 64, 3, 3\); "
            r"expected \(64, 64, 3, 3\) from a base width of 8 and MVF alpha 0\.125",
        ),
        (without, r"missing 1 tensors \(backbone\.layer2\.0\.bn1\.running_var\)"),
    ]
    for bad, message in cases:
        with pytest.raises(CheckpointError, match=message):
            infer_model_kwargs(bad)


def _cli_convert(checkpoint, output, capsys):
    code = cli.main(["convert", str(checkpoint), str(output)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_convert_refuses_bad_checkpoints_with_one_line(tiny, tmp_path, capsys):
    extra = {**tiny[0].state_dict(), "backbone.layer3.399.conv1.weight": torch.zeros(1, 1, 1, 1)}
    torch.save({"state_dict": extra}, tmp_path / "deep.pth")
    output = tmp_path / "deep"  # a preset directory
    code, lines = _cli_convert(tmp_path / "deep.pth", output, capsys)
    assert code == 2 and len(lines) == 1
    assert "unexpected tensor 'backbone.layer3.399.conv1.weight'" in lines[0]
    assert not output.exists()

    # A zero-size head declaring a billion classes: the reader refuses it.
    huge = {**tiny[0].state_dict(), "cls_head.new_fc.weight": torch.empty(10**9, 0)}
    torch.save({"state_dict": huge}, tmp_path / "huge.pth")
    code, lines = _cli_convert(tmp_path / "huge.pth", output, capsys)
    assert code == 2 and len(lines) == 1
    assert "huge.pth: tensor 'state_dict/cls_head.new_fc.weight' of shape" in lines[0]

    with zipfile.ZipFile(tmp_path / "exec.pth", "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02cbuiltins\nexec\n.")
    code, lines = _cli_convert(tmp_path / "exec.pth", output, capsys)
    assert code == 2 and len(lines) == 1
    assert "exec.pth: refusing to load `builtins.exec`" in lines[0]
