"""FLOPs and parameters against SPEC.md's table (the "pytorch" layout of the release)."""

import pytest

import keras_mvf
from keras_mvf.utils import count_flops, count_params


@pytest.mark.large
@pytest.mark.parametrize(
    ("name", "kwargs", "gflops", "mparams"),
    [
        ("c2d50", {"num_frames": 8}, 32.889, 24.33),
        ("mvfnet50", {"num_frames": 4}, 16.454, 24.34),
        ("mvfnet50", {"num_frames": 8}, 32.909, 24.34),
        ("mvfnet50", {"num_frames": 16}, 65.817, 24.34),
        ("mvfnet50", {"num_frames": 8, "alpha": 0.5}, 32.968, 24.39),
    ],
)
def test_spec_table(name, kwargs, gflops, mparams):
    model = keras_mvf.create_model(name, num_classes=400, layout="pytorch", **kwargs)
    assert count_flops(model) == pytest.approx(gflops, abs=0.005)
    assert count_params(model) / 1e6 == pytest.approx(mparams, abs=0.01)


def test_mvf_costs_its_depthwise_convs_and_batch_norm():
    def flops(**kwargs):
        return count_flops(
            keras_mvf.ResNetVideo(
                (1, 1, 1, 1), base_width=8, num_frames=4, input_shape=(32, 32, 3), **kwargs
            )
        )

    # One MVF module in res5's block: input 4 frames x 2 x 2 x 128 channels, alpha 1/2.
    extra = flops(alpha=0.5, stages=(5,)) - flops(temporal_module=None)
    assert extra * 1e9 == pytest.approx(4 * 2 * 2 * 64 * (3 * 3 + 2))
    assert flops(alpha=0.5, stages=(5,), views="t") - flops(temporal_module=None) == (
        pytest.approx(4 * 2 * 2 * 64 * (3 + 2) / 1e9)
    )


def test_unknown_frame_size_is_a_clear_error():
    model = keras_mvf.ResNetVideo(
        (1, 1, 1, 1), base_width=8, num_frames=4, input_shape=(None, None, 3)
    )
    with pytest.raises(ValueError, match="input_shape=\\(224, 224, 3\\)"):
        count_flops(model)
