"""Clips per second per CPU core for 8-frame training clips, by decoding method.

Writes 10-second 340x256 30 fps videos of a panning, noisy texture: MPEG-4
Part 2 as OpenCV writes it (a keyframe every 12 frames), and with PyAV H.264
from libx264 with its defaults (B-frames, a keyframe every 250 frames, as
ffmpeg re-encodes Kinetics) and with a keyframe every 16 frames. Then times,
on one thread, 8-frame clips (dense 8x8 and uniform 8-segment sampling) with
a random resized crop to 224 and a flip, decoded by:

- keyframe_seek: `read_frames(decoder="pyav")`, which seeks to the keyframe
  before each wanted frame and skips unwanted non-reference frames;
- selective: `read_frames(decoder="opencv")`, which grabs (decodes without
  converting) every frame up to the last wanted one;
- naive: a full decode with OpenCV, then the wanted frames;

and the whole `build_dataset` pipeline (dense 8x8, parallel map over all
cores): on the videos with the default decoder, and on TFRecords packed
from the H.264 GOP 250 video (`keras-mvf data pack` defaults: JPEG quality
90), decoded and augmented in TensorFlow ops. Every figure is the median over `repeats`
timings taken in interleaved rounds, so that load from other processes hits
all of them alike. `measure()` returns the rows (the benchmark suite uses
it); `main()` prints them. Run: `python -m keras_mvf.benchmark.data`.
"""

import argparse
import collections
import os
import statistics
import tempfile
import time

import cv2
import numpy as np

from keras_mvf.data import probe, read_all_frames, read_frames, sample_indices, write_video
from keras_mvf.data.transforms import transform_clips


def synthetic_video(
    path, fourcc=None, seconds=10, fps=30, size=(256, 340), seed=0, keyframe_interval=None
):
    """A textured scene panning and zooming, with noise, like a handheld camera."""
    rng = np.random.default_rng(seed)
    height, width = size
    scene = cv2.resize(
        rng.integers(0, 256, (64, 96, 3), dtype=np.uint8),
        (width * 2, height * 2),
        interpolation=cv2.INTER_CUBIC,
    )
    frames = np.empty((seconds * fps, height, width, 3), np.uint8)
    for i in range(len(frames)):
        y, x = int(height / 2 * (1 + np.sin(i / 40))), int(width / 2 * (1 + np.cos(i / 55)))
        noise = rng.integers(-8, 9, (height, width, 3))
        frames[i] = np.clip(scene[y : y + height, x : x + width].astype(int) + noise, 0, 255)
    return write_video(path, frames, fps, fourcc, keyframe_interval=keyframe_interval)


def _time_clips(path, sampling, decode, clips, seed):
    rng = np.random.default_rng(seed)
    total = probe(path).num_frames
    start = time.perf_counter()
    for _ in range(clips):
        indices = sample_indices(sampling, total, 8, 8, True, 1, rng)[0]
        frames = decode(path, indices)
        transform_clips(frames[None], True, rng, 224, 256)
    return clips / (time.perf_counter() - start)


DECODERS = {
    "keyframe_seek": lambda path, indices: read_frames(path, indices, decoder="pyav"),
    "selective": lambda path, indices: read_frames(path, indices, decoder="opencv"),
    "naive": lambda path, indices: read_all_frames(path)[indices],
}


# The codec label of the packed TFRecords' rows.
TFRECORD = "TFRecord (JPEG 90)"


def _manifest(path, copies):
    from keras_mvf.data import VideoEntry
    from keras_mvf.data.annotations import Manifest

    return Manifest([VideoEntry(path, probe(path).num_frames, 30.0, 0)] * copies, ["x"], "")


def _pipeline_rate(source, batches, seed):
    """Clips per second of `build_dataset` training batches of 8 from `source`."""
    from keras_mvf.data import build_dataset

    dataset = build_dataset(source, True, batch_size=8, seed=seed)
    iterator = iter(dataset.repeat())
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * 8 / (time.perf_counter() - start)


def write_videos(folder, seconds=10):
    """The benchmark's videos `{codec label: path}` (H.264 only where PyAV is installed)."""
    videos = {
        "MPEG-4 (OpenCV, GOP 12)": synthetic_video(os.path.join(folder, "mpeg4.mp4"), None, seconds)
    }
    try:
        videos["H.264 (x264, GOP 250)"] = synthetic_video(
            os.path.join(folder, "h264.mp4"), "avc1", seconds
        )
        videos["H.264 (x264, GOP 16)"] = synthetic_video(
            os.path.join(folder, "h264_16.mp4"), "avc1", seconds, keyframe_interval=16
        )
    except ImportError:
        print("H.264: PyAV is not installed (pip install av); skipped")
    return videos


def measure(clips=20, repeats=5, batches=10, seconds=10):
    """Times every figure the benchmark reports; one dict per figure.

    Args:
        clips: clips per timing.
        repeats: timings per figure (the median is reported).
        batches: `build_dataset` batches of 8 per timing.
        seconds: length of each video, at 30 frames per second.

    Returns:
        A list of `{"codec", "sampling", "method", "clips_per_second_per_core"}`
        dicts: `method` is `"keyframe_seek"`, `"selective"` or `"naive"` (one
        thread) or `"build_dataset"` (parallel map over all cores, dense 8x8,
        divided by the number of cores; for the codec `TFRECORD` too, packed
        from the H.264 GOP 250 video, or the MPEG-4 one without PyAV).
        Without PyAV, `keyframe_seek` rows are left out.
    """
    from keras_mvf.data import pack_tfrecords

    cv2.setNumThreads(1)
    methods = dict(DECODERS)
    try:
        import av  # noqa: F401
    except ImportError:
        del methods["keyframe_seek"]
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as folder:
        videos = write_videos(folder, seconds)
        packed = os.path.join(folder, "shards")
        source = videos.get("H.264 (x264, GOP 250)", videos["MPEG-4 (OpenCV, GOP 12)"])
        pack_tfrecords(_manifest(source, 16), packed, num_shards=2, workers=cores)
        timings = collections.defaultdict(list)
        for seed in range(repeats):
            for codec, path in videos.items():
                for sampling in ("dense", "uniform"):
                    for method, decode in methods.items():
                        rate = _time_clips(path, sampling, decode, clips, seed)
                        timings[codec, sampling, method].append(rate)
                timings[codec, "dense", "build_dataset"].append(
                    _pipeline_rate(_manifest(path, 16), batches, seed) / cores
                )
            timings[TFRECORD, "dense", "build_dataset"].append(
                _pipeline_rate(packed, batches, seed) / cores
            )
    return [
        {
            "codec": codec,
            "sampling": sampling,
            "method": method,
            "clips_per_second_per_core": statistics.median(rates),
        }
        for (codec, sampling, method), rates in timings.items()
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20, help="clips per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per figure (median)")
    parser.add_argument("--batches", type=int, default=10, help="tf.data batches of 8 to time")
    args = parser.parse_args(argv)
    rows = measure(args.clips, args.repeats, args.batches)
    print(f"{'codec':<24} {'sampling':<8} {'method':<14} clips/s/core")
    for row in rows:
        print(
            f"{row['codec']:<24} {row['sampling']:<8} {row['method']:<14} "
            f"{row['clips_per_second_per_core']:.1f}"
        )
    rates = {(row["codec"], row["method"]): row["clips_per_second_per_core"] for row in rows}
    video = rates.get(("H.264 (x264, GOP 250)", "build_dataset"))
    if video:
        ratio = rates[TFRECORD, "build_dataset"] / video
        print(f"TFRecord / H.264 GOP 250, build_dataset: {ratio:.1f}x")
    from keras_mvf.benchmark.suite import _cpu

    cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
    model, features = _cpu()
    print(f"({cores} cores of {model}: {features}; load average {load:.1f} at the end)")


if __name__ == "__main__":
    main()
