import numpy as np
import pytest

from keras_mvf.data.transforms import (
    eval_crop_boxes,
    multi_scale_crop_box,
    random_resized_crop_box,
    transform_clips,
)
from tests.data.conftest import make_frames


def _clip_of_one_frame(height, width, frames=4):
    return np.repeat(make_frames(1, height, width)[None], frames, axis=1)


def test_training_crop_and_flip_are_the_same_for_every_frame():
    rng = np.random.default_rng(0)
    clip = _clip_of_one_frame(48, 64)
    flips = set()
    for train_crop in ("random_resized", "multi_scale"):
        for _ in range(8):
            views, flipped = transform_clips(
                clip, True, rng, crop_size=32, short_side=40, train_crop=train_crop
            )
            assert views.shape == (1, 4, 32, 32, 3) and views.dtype == np.uint8
            for frame in views[0, 1:]:
                np.testing.assert_array_equal(frame, views[0, 0])
            flips.add(flipped)
    assert flips == {True, False}


def test_flip_can_be_switched_off():
    rng = np.random.default_rng(0)
    clip = _clip_of_one_frame(40, 40)
    assert not any(transform_clips(clip, True, rng, 32, 40, flip=False)[1] for _ in range(20))


def test_flipped_output_mirrors_the_unflipped_one():
    clip = _clip_of_one_frame(48, 64)
    seed = next(
        s for s in range(100) if transform_clips(clip, True, np.random.default_rng(s), 32, 40)[1]
    )
    flipped, _ = transform_clips(clip, True, np.random.default_rng(seed), 32, 40)
    plain, _ = transform_clips(clip, True, np.random.default_rng(seed), 32, 40, flip=False)
    np.testing.assert_array_equal(flipped, plain[:, :, :, ::-1])


def test_centre_crop_after_short_side_resize():
    frames = make_frames(2, 48, 64)
    views, _ = transform_clips(frames[None], False, None, crop_size=40, short_side=48)
    np.testing.assert_array_equal(views[0], frames[:, 4:44, 12:52])


def test_three_crops_span_the_long_side():
    assert eval_crop_boxes(256, 340, 256, 3) == [
        (0, 0, 256, 256),
        (0, 42, 256, 256),
        (0, 84, 256, 256),
    ]
    assert eval_crop_boxes(340, 256, 224, 3) == [
        (0, 16, 224, 224),
        (58, 16, 224, 224),
        (116, 16, 224, 224),
    ]
    clips = np.stack([make_frames(3, 48, 64, seed=s) for s in (1, 2)])
    views, _ = transform_clips(clips, False, None, crop_size=48, short_side=48, num_crops=3)
    assert views.shape == (6, 3, 48, 48, 3)
    np.testing.assert_array_equal(views[3], clips[1][:, :, 0:48])
    np.testing.assert_array_equal(views[5], clips[1][:, :, 16:64])
    with pytest.raises(ValueError, match="Received: num_crops=2"):
        eval_crop_boxes(48, 64, 32, 2)


@pytest.mark.parametrize("size", [(1, 1), (3000, 4000), (17, 33), (7, 200)])
def test_any_frame_size_gives_the_requested_output(size):
    clip = np.full((1, 2, *size, 3), 90, np.uint8)
    for training in (True, False):
        views, _ = transform_clips(clip, training, np.random.default_rng(0), 32, 36)
        assert views.shape == (1, 2, 32, 32, 3)
        assert np.all(views == 90)


def test_crop_boxes_stay_inside_the_frame():
    rng = np.random.default_rng(3)
    for height, width in ((256, 340), (256, 1000), (1000, 256), (1, 1)):
        for box in (
            random_resized_crop_box(height, width, rng),
            multi_scale_crop_box(height, width, rng),
        ):
            y, x, h, w = box
            assert 0 <= y and 0 <= x and h >= 1 and w >= 1
            assert y + h <= height and x + w <= width


def test_unknown_train_crop():
    with pytest.raises(ValueError, match="Received: train_crop=centre"):
        transform_clips(
            _clip_of_one_frame(8, 8), True, np.random.default_rng(0), 8, 8, train_crop="centre"
        )
