"""Clips per second per CPU core for 8-frame training clips, selective vs naive decoding.

Writes 10-second 340x256 30 fps videos (MPEG-4 Part 2 as OpenCV writes it, and
H.264 where an encoder is available), then times on one thread:

- selective: the pipeline's `read_frames` (grab the skipped frames, decode and
  convert only the kept ones) + random resized crop to 224 + flip;
- naive: decode every frame with `read()`, then pick the frames + the same
  transforms;

for dense 8x8 and uniform 8-segment sampling, and the full `build_dataset`
pipeline on all cores. `measure()` returns the medians over repeats as rows
(used by the benchmark suite); `main()` prints them. Run:
`python -m keras_mvf.benchmark.data`.
"""

import argparse
import os
import statistics
import tempfile
import time

import cv2
import numpy as np

from keras_mvf.data import read_all_frames, read_frames, sample_indices, write_video
from keras_mvf.data.transforms import transform_clips


def synthetic_video(path, fourcc=None, seconds=10, fps=30, size=(256, 340), seed=0):
    """A textured scene panning and zooming, with noise, like a handheld camera."""
    rng = np.random.default_rng(seed)
    height, width = size
    scene = cv2.resize(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (width * 2, height * 2),
                       interpolation=cv2.INTER_CUBIC)
    frames = np.empty((seconds * fps, height, width, 3), np.uint8)
    for i in range(len(frames)):
        y, x = int(height / 2 * (1 + np.sin(i / 40))), int(width / 2 * (1 + np.cos(i / 55)))
        noise = rng.integers(-8, 9, (height, width, 3))
        frames[i] = np.clip(scene[y:y + height, x:x + width].astype(int) + noise, 0, 255)
    return write_video(path, frames, fps, fourcc)


def _time_clips(path, sampling, decode, clips, seed):
    rng = np.random.default_rng(seed)
    total = int(cv2.VideoCapture(path).get(cv2.CAP_PROP_FRAME_COUNT))
    start = time.perf_counter()
    for _ in range(clips):
        indices = sample_indices(sampling, total, 8, 8, True, 1, rng)[0]
        frames = decode(path, indices)
        transform_clips(frames[None], True, rng, 224, 256)
    return clips / (time.perf_counter() - start)


def _naive(path, indices):
    return read_all_frames(path)[indices]


def _pipeline_rate(paths, batches):
    from keras_mvf.data import VideoEntry, build_dataset
    from keras_mvf.data.annotations import Manifest

    entries = [VideoEntry(path, 300, 30.0, 0) for path in paths] * 8
    dataset = build_dataset(Manifest(entries, ["x"], ""), True, batch_size=8, seed=0)
    iterator = iter(dataset.repeat())
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * 8 / (time.perf_counter() - start)


def measure(clips=20, repeats=5, batches=10):
    """Times every figure the benchmark reports; one dict per figure.

    Args:
        clips: clips per timing.
        repeats: timings per figure (the median is reported).
        batches: `build_dataset` batches of 8 to time.

    Returns:
        A list of `{"codec", "sampling", "method", "clips_per_second_per_core"}`
        dicts: `method` is `"selective"` or `"naive"` (one thread) or
        `"build_dataset"` (parallel map over all cores, dense 8x8).
    """
    cv2.setNumThreads(1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        videos = {"MPEG-4 (mp4v)": synthetic_video(os.path.join(folder, "mpeg4.mp4"))}
        try:
            videos["H.264 (avc1)"] = synthetic_video(os.path.join(folder, "h264.mp4"), "avc1")
        except OSError:
            print("H.264: no encoder in this OpenCV build; skipped")
        for codec, path in videos.items():
            for sampling in ("dense", "uniform"):
                for method, decode in (("selective", read_frames), ("naive", _naive)):
                    rate = statistics.median(_time_clips(path, sampling, decode, clips, seed)
                                             for seed in range(repeats))
                    rows.append(_row(codec, sampling, method, rate))
        cores = len(os.sched_getaffinity(0))
        rate = statistics.median(_pipeline_rate(list(videos.values()), batches)
                                 for _ in range(3))
        rows.append(_row("all of the above", "dense", "build_dataset", rate / cores))
    return rows


def _row(codec, sampling, method, rate):
    return {"codec": codec, "sampling": sampling, "method": method,
            "clips_per_second_per_core": rate}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20, help="clips per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per figure (median)")
    parser.add_argument("--batches", type=int, default=10, help="tf.data batches of 8 to time")
    args = parser.parse_args(argv)
    print(f"{'codec':<16} {'sampling':<8} {'method':<14} clips/s/core")
    for row in measure(args.clips, args.repeats, args.batches):
        print(f"{row['codec']:<16} {row['sampling']:<8} {row['method']:<14} "
              f"{row['clips_per_second_per_core']:.1f}")


if __name__ == "__main__":
    main()
