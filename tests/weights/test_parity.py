"""Full-size numerical identity with the independent PyTorch network (ResNet-50/101, 4/8 frames,
224/256 px), each case through another way of getting the weights into Keras."""

import os

import numpy as np
import pytest
import torch

import keras_mvf
from keras_mvf.models.pretrained import convert_checkpoint
from keras_mvf.weights import convert, presets
from tests import torch_reference as ref

pytestmark = pytest.mark.large


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """`depth -> (torch network, zip .pth, legacy .pth)`, built on first use."""
    made = {}

    def get(depth):
        if depth not in made:
            net = ref.randomize(ref.MVFNet(depth), seed=depth)
            directory = tmp_path_factory.mktemp(f"r{depth}")
            checkpoint = {
                "meta": {"epoch": 150, "mmcv_version": "1.2.0"},
                "state_dict": net.state_dict(),
            }
            zipped, legacy = directory / "zip.pth", directory / "legacy.pth"
            torch.save(checkpoint, zipped)
            torch.save(checkpoint, legacy, _use_new_zipfile_serialization=False)
            made[depth] = net, zipped, legacy
        return made[depth]

    return get


def _compare(model, net, frames, size, seed):
    clips = np.random.default_rng(seed).uniform(0, 255, (1, frames, size, size, 3))
    clips = clips.astype("float32")
    with torch.no_grad():
        want = ref.set_num_frames(net, frames)(ref.normalise(clips)).numpy()
    got = np.asarray(model(clips, training=False))
    assert got.shape == want.shape == (1, 400)
    error = np.abs(got - want).max()
    assert error <= 1e-4 * np.abs(want).max(), (error, np.abs(want).max())


def test_resnet50_4_frames_224_from_preset_of_a_downloaded_release(
    checkpoints, file_server, weights_cache, monkeypatch, capsys
):
    net, zipped, _ = checkpoints(50)
    root, base_url, stop = file_server
    monkeypatch.setenv(presets.BASE_URL_ENV, base_url)
    served = root / presets.PRESETS["mvfnet50_k400_4x16"]["file"]
    served.parent.mkdir(parents=True)
    served.write_bytes(zipped.read_bytes())

    model = keras_mvf.from_preset("mvfnet50_k400_4x16", classifier_activation=None)
    cached = weights_cache / "keras_mvf" / "presets"
    assert os.listdir(cached) == [f"mvfnet50_k400_4x16.converter-{convert.CONVERTER_VERSION}"]
    total = len(model.weights)
    assert (
        f"loaded {total} of {total} variables from mvfnet50_k400_4x16\n" in capsys.readouterr().err
    )
    _compare(model, net, 4, 224, seed=0)

    stop()  # converted once: later models come from the cache, offline
    tuned = keras_mvf.MVFNet50(weights="kinetics400", num_frames=4, num_classes=101)
    assert tuned.output_shape == (None, 101)
    assert capsys.readouterr().err.endswith(
        f"loaded {total - 2} of {total} variables from mvfnet50_k400_4x16; "
        "new classifier (101 classes)\n"
    )
    # Fine-tuning keeps every backbone variable bit-identical.
    for before, after in zip(model.weights, tuned.weights, strict=True):
        if not before.path.startswith("predictions/"):
            np.testing.assert_array_equal(before.numpy(), after.numpy())
    np.testing.assert_array_equal(
        tuned.get_layer("conv5_block3_mvf").bn.moving_variance.numpy(),
        net.backbone.layer4[2].conv1.bn.running_var.numpy(),
    )


def test_resnet50_8_frames_256_legacy_pth(checkpoints):
    net, _, legacy = checkpoints(50)
    model = keras_mvf.MVFNet50(
        weights=str(legacy), num_frames=8, input_shape=(256, 256, 3), classifier_activation=None
    )
    _compare(model, net, 8, 256, seed=1)


def test_resnet101_4_frames_256_legacy_pth(checkpoints):
    net, _, legacy = checkpoints(101)
    model = keras_mvf.MVFNet101(
        weights=str(legacy), num_frames=4, input_shape=(256, 256, 3), classifier_activation=None
    )
    _compare(model, net, 4, 256, seed=2)


def test_resnet101_8_frames_224_converted_preset(checkpoints, tmp_path):
    net, zipped, _ = checkpoints(101)
    output = tmp_path / "mvfnet101_k400_8x8"
    convert_checkpoint(zipped, output, model="mvfnet101")
    model = keras_mvf.MVFNet101(weights=str(output), num_frames=8, classifier_activation=None)
    _compare(model, net, 8, 224, seed=3)


def test_resnet50_torchvision_imagenet_backbone_download(file_server, weights_cache, monkeypatch):
    backbone = ref.randomize(ref.ResNet(50, mvf_layers=()), seed=5)
    root, base_url, _ = file_server
    monkeypatch.setenv(presets.BASE_URL_ENV, base_url)
    served = root / presets.PRESETS["resnet50_imagenet"]["file"]
    served.parent.mkdir(parents=True)
    torch.save(ref.torchvision_state_dict(backbone), served)

    model = keras_mvf.MVFNet50(backbone_weights="resnet50_imagenet", num_frames=4)
    assert not model.get_layer("conv1_conv").use_bias  # the "pytorch" layout, picked for it
    state = {key: value.detach().numpy() for key, value in backbone.state_dict().items()}
    expected = {
        "conv1_conv": state["conv1.weight"].transpose(2, 3, 1, 0),
        "conv4_block1_1_conv": state["layer3.0.conv1.weight"].transpose(2, 3, 1, 0),
        "conv5_block3_3_bn": state["layer4.2.bn3.running_var"],
    }
    for name, value in expected.items():
        np.testing.assert_array_equal(model.get_layer(name).weights[-1].numpy(), value)
    with pytest.raises(ValueError, match="need layout='pytorch'. Received: layout='keras'"):
        keras_mvf.MVFNet50(layout="keras", backbone_weights="resnet50_imagenet")
