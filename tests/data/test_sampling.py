import numpy as np
import pytest

from keras_mvf.data import dense_indices, sample_indices, uniform_indices


def test_dense_training_is_a_strided_clip_inside_the_video():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        (clip,) = dense_indices(300, 8, 8, training=True, rng=rng)
        np.testing.assert_array_equal(np.diff(clip), 8)
        assert 0 <= clip[0] and clip[-1] < 300
        starts.add(int(clip[0]))
    assert len(starts) > 10 and max(starts) <= 300 - 57


def test_dense_is_a_pure_function_of_the_seed():
    first = dense_indices(300, 8, 8, True, rng=np.random.default_rng(7))
    second = dense_indices(300, 8, 8, True, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(first, second)


def test_dense_testing_clips_are_evenly_spaced():
    clips = dense_indices(300, 8, 8, training=False, num_clips=10)
    assert clips.shape == (10, 8)
    # 244 possible starts split in 10 shares, each clip centred in its share.
    np.testing.assert_array_equal(clips[:, 0], [int((k + 0.5) * 24.4) for k in range(10)])
    np.testing.assert_array_equal(dense_indices(57, 8, 8, training=False)[0], np.arange(0, 57, 8))


def test_short_videos_wrap_or_repeat_the_last_frame():
    np.testing.assert_array_equal(dense_indices(10, 4, 4, training=False)[0], [0, 4, 8, 2])
    np.testing.assert_array_equal(
        dense_indices(10, 4, 4, training=False, short_video="last")[0], [0, 4, 8, 9]
    )
    np.testing.assert_array_equal(dense_indices(1, 4, 8, training=True)[0], [0, 0, 0, 0])


def test_uniform_training_takes_one_frame_per_segment():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        (clip,) = uniform_indices(80, 8, training=True, rng=rng)
        np.testing.assert_array_equal(clip // 10, np.arange(8))
        seen.add(tuple(clip))
    assert len(seen) > 1


def test_uniform_testing_takes_segment_centres_and_offsets_per_clip():
    np.testing.assert_array_equal(uniform_indices(80, 8, training=False)[0], np.arange(8) * 10 + 5)
    two = uniform_indices(80, 8, training=False, num_clips=2)
    np.testing.assert_array_equal(two[0], np.arange(8) * 10 + 2)
    np.testing.assert_array_equal(two[1], np.arange(8) * 10 + 7)


def test_uniform_short_video_repeats_frames_never_empty():
    for training in (True, False):
        clip = uniform_indices(3, 8, training=training, rng=np.random.default_rng(1))[0]
        assert len(clip) == 8 and clip.min() >= 0 and clip.max() <= 2
        assert np.all(np.diff(clip) >= 0)


def test_invalid_arguments_name_the_argument():
    with pytest.raises(ValueError, match="Received: total_frames=0"):
        dense_indices(0)
    with pytest.raises(ValueError, match="Received: frame_interval=0"):
        dense_indices(10, frame_interval=0)
    with pytest.raises(ValueError, match="Received: short_video=loop"):
        dense_indices(10, short_video="loop")
    with pytest.raises(ValueError, match="Received: sampling=random"):
        sample_indices("random", 10, 4, 1, True)
