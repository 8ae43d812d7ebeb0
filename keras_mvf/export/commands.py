"""`keras-mvf export` and `keras-mvf predict`."""

import json
import sys


def _add_sampling_arguments(parser):
    parser.add_argument(
        "--sampling",
        choices=("dense", "uniform"),
        default="dense",
        help="frame sampling: dense (Kinetics) or uniform segments (Something-Something)",
    )
    parser.add_argument(
        "--frame-interval", type=int, default=8, help="step between frames for dense sampling"
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="short side before the centre crop (default: size * 256 / 224)",
    )


def register(subparsers):
    export = subparsers.add_parser(
        "export", help="write a model as a TF Serving SavedModel or a TFLite file"
    )
    export.add_argument(
        "model", help="a .keras file, a preset directory or a release name (`keras-mvf weights`)"
    )
    export.add_argument(
        "--format",
        choices=("saved_model", "tflite"),
        required=True,
        help="saved_model (TF Serving) or tflite (LiteRT)",
    )
    export.add_argument(
        "--output",
        required=True,
        help="SavedModel base directory (TF Serving's model_base_path) or .tflite",
    )
    export.add_argument("--version", type=int, default=1, help="SavedModel version subdirectory")
    export.add_argument("--top-k", type=int, default=5, help="top classes the SavedModel returns")
    export.add_argument(
        "--labels",
        help="file with one class name per line, in class order; without it, the preset's "
        "labels.txt, or for MODEL.keras the MODEL.labels.txt or labels.txt beside it",
    )
    export.add_argument(
        "--quantization",
        choices=("float16", "dynamic", "int8"),
        default=None,
        help="TFLite quantization (default: float32)",
    )
    export.add_argument(
        "--streaming",
        action="store_true",
        help="tflite: the 'frame' and 'window' signatures of a live stream instead of one for "
        "whole clips (docs/mobile.md)",
    )
    export.add_argument(
        "--uint8-input", action="store_true", help="tflite: uint8 pixels in instead of float32"
    )
    export.add_argument(
        "--calibration-manifest",
        help="int8: manifest (`keras-mvf data index`) whose videos or frame folders calibrate",
    )
    export.add_argument(
        "--calibration-clips",
        type=int,
        default=32,
        help="int8: how many manifest entries to take one clip from",
    )
    _add_sampling_arguments(export)
    export.set_defaults(run=run_export)

    predict = subparsers.add_parser(
        "predict", help="top-k classes of videos with a .keras, SavedModel or .tflite model"
    )
    predict.add_argument("videos", nargs="+", metavar="VIDEO")
    predict.add_argument(
        "--model",
        required=True,
        help="a .keras file, a preset directory, a release name, a SavedModel directory or a "
        ".tflite file",
    )
    predict.add_argument(
        "--clips",
        type=int,
        default=1,
        help="clips per video, evenly spaced; their probabilities are averaged",
    )
    predict.add_argument("--top-k", type=int, default=5, help="classes to show per video")
    predict.add_argument(
        "--labels",
        help="file with one class name per line (overrides the labels stored with the model)",
    )
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.add_argument(
        "--sliding-window", action="store_true", help="predict every window of the video, over time"
    )
    predict.add_argument(
        "--stream",
        action="store_true",
        help="predict the window ending at every sampled frame (every --window-stride frames), "
        "as a live stream: each frame goes through the per-frame layers once (.keras files "
        "and streaming .tflite exports; other models run whole windows)",
    )
    predict.add_argument(
        "--overlay",
        metavar="OUT.mp4",
        help="write the video (one only) with the top-k labels and scores drawn on every frame",
    )
    predict.add_argument(
        "--window-stride",
        type=int,
        default=None,
        help="frames between window starts (default: the window's length; --stream: "
        "--frame-interval)",
    )
    predict.add_argument(
        "--threads",
        type=int,
        default=None,
        help="LiteRT interpreter threads (default: LiteRT's)",
    )
    _add_sampling_arguments(predict)
    predict.set_defaults(run=run_predict)


def _positive(name, value):
    if value is not None and value < 1:
        raise ValueError(f"`--{name}` must be a positive integer. Received: {name}={value}")


def _test_clips(path, clip_shape, args, num_clips=1, indices=None):
    """uint8 clips `(n, *clip_shape)` of a video, sampled and centre-cropped for testing."""
    from keras_mvf.data import probe, read_frames, sample_indices
    from keras_mvf.data.transforms import transform_clips

    num_frames, height, width = clip_shape[:3]
    if height != width:
        raise ValueError(f"Expected a model for square frames. Received: clip shape={clip_shape}")
    if indices is None:
        indices = sample_indices(
            args.sampling,
            probe(path).num_frames,
            num_frames,
            args.frame_interval,
            training=False,
            num_clips=num_clips,
        )
    frames = read_frames(path, indices.reshape(-1))
    clips = frames.reshape(*indices.shape, *frames.shape[1:])
    short_side = args.short_side or round(height * 256 / 224)
    views, _ = transform_clips(
        clips, training=False, rng=None, crop_size=height, short_side=short_side, num_crops=1
    )
    return views


def _window_indices(total_frames, num_frames, frame_interval, stride):
    """Frame indices `(windows, num_frames)` of dense windows covering the video."""
    import numpy as np

    span = (num_frames - 1) * frame_interval + 1
    starts = np.arange(0, max(total_frames - span, 0) + 1, stride or span)
    indices = starts[:, None] + np.arange(num_frames)[None, :] * frame_interval
    return np.minimum(indices, total_frames - 1), span


def run_export(args):
    from keras_mvf.export import common, export_saved_model, export_tflite
    from keras_mvf.models.pretrained import load_model

    _positive("calibration-clips", args.calibration_clips)
    model, default_labels = load_model(args.model)
    labels = common.resolve_labels(args.labels, model.output_shape[-1], default_labels)
    if args.format == "saved_model":
        if args.quantization or args.calibration_manifest or args.streaming or args.uint8_input:
            raise ValueError(
                "--quantization, --calibration-manifest, --streaming and --uint8-input apply to "
                "--format tflite."
            )
        path = export_saved_model(
            model, args.output, version=args.version, labels=labels, top_k=args.top_k
        )
    else:
        representative = None
        if args.quantization == "int8":
            if not args.calibration_manifest:
                raise ValueError("--quantization int8 needs --calibration-manifest.")
            from keras_mvf.data import build_dataset

            # The evaluation pipeline: videos and frame folders alike, one centre clip each.
            num_frames, size = common.clip_shape(model)[:2]
            representative = build_dataset(
                args.calibration_manifest,
                training=False,
                num_frames=num_frames,
                sampling=args.sampling,
                frame_interval=args.frame_interval,
                batch_size=1,
                crop_size=size,
                short_side=args.short_side or round(size * 256 / 224),
            ).take(args.calibration_clips)
        size = common.clip_shape(model)[1]
        preprocessing = {
            "sampling": args.sampling,
            "frame_interval": args.frame_interval,
            "short_side": args.short_side or round(size * 256 / 224),
        }
        path = export_tflite(
            model,
            args.output,
            args.quantization,
            representative,
            labels,
            input_dtype="uint8" if args.uint8_input else "float32",
            streaming=args.streaming,
            preprocessing=preprocessing,
        )
    print(f"Wrote {path}")
    return 0


def _predict_video(predictor, path, args, stream=None):
    """One video's result as a JSON-ready dict; windows come from `stream` when given."""
    import numpy as np

    from keras_mvf.data import probe

    def top(probabilities):
        order = np.argsort(-probabilities)[: args.top_k]
        return [
            {
                "label": predictor.label(int(i)),
                "index": int(i),
                "probability": float(probabilities[i]),
            }
            for i in order
        ]

    if stream is None and not args.sliding_window:
        clips = _test_clips(path, predictor.clip_shape, args, num_clips=args.clips)
        return {"video": path, "predictions": top(predictor.predict(clips).mean(axis=0))}
    info = probe(path)
    span = (predictor.num_frames - 1) * args.frame_interval + 1
    if stream is not None:
        from keras_mvf.inference.video import stream_windows

        size = predictor.clip_shape[1]
        short_side = args.short_side or round(size * 256 / 224)
        stride = args.window_stride or args.frame_interval
        found = stream_windows(stream, path, args.frame_interval, stride, short_side)
        first, last, probabilities = zip(*found, strict=True)
    else:
        indices, span = _window_indices(
            info.num_frames, predictor.num_frames, args.frame_interval, args.window_stride
        )
        clips = _test_clips(path, predictor.clip_shape, args, indices=indices)
        first, last, probabilities = indices[:, 0], indices[:, -1], predictor.predict(clips)
    fps = info.fps or 1.0
    windows = [
        {
            "start_s": float(start / fps),
            "end_s": float((start + span) / fps),
            "last_frame": int(end),
            "predictions": top(p),
        }
        for start, end, p in zip(first, last, probabilities, strict=True)
    ]
    return {"video": path, "fps": info.fps, "windows": windows}


def _write_overlay(result, output):
    """Draws a result's predictions on its video: each window's from its last frame on."""
    from keras_mvf.inference.video import write_overlay

    def lines(predictions):
        return [f"{p['label']} {p['probability']:.2f}" for p in predictions]

    if "windows" in result:
        timeline = [(w["last_frame"], lines(w["predictions"])) for w in result["windows"]]
    else:
        timeline = [(0, lines(result["predictions"]))]
    count = write_overlay(result["video"], output, timeline)
    print(f"Wrote {output} ({count} frames)", file=sys.stderr)


def _print_text(result):
    print(result["video"])
    for window in result.get("windows", [None]):
        predictions = window["predictions"] if window else result["predictions"]
        if window:
            text = ", ".join(f"{p['label']} {p['probability']:.3f}" for p in predictions)
            print(f"  {window['start_s']:8.2f}s - {window['end_s']:8.2f}s  {text}")
        else:
            for p in predictions:
                print(f"  {p['probability']:.4f}  {p['label']}")


def run_predict(args):
    from keras_mvf.export import load_predictor

    for name in ("clips", "top_k", "frame_interval", "window_stride", "threads"):
        _positive(name.replace("_", "-"), getattr(args, name))
    if args.stream:
        from keras_mvf.inference.video import check_window_stride

        check_window_stride(args.window_stride or args.frame_interval, args.frame_interval)
    if args.overlay:
        from keras_mvf.inference.video import check_overlay_path

        check_overlay_path(args.overlay)
        if len(args.videos) != 1:
            raise ValueError(f"--overlay takes one video. Received: {len(args.videos)} videos")
    predictor = load_predictor(args.model, labels=args.labels, num_threads=args.threads)
    stream = predictor.stream() if args.stream else None
    results, failed = [], 0
    for path in args.videos:
        try:
            result = _predict_video(predictor, path, args, stream)
            if args.overlay:
                _write_overlay(result, args.overlay)
        except (OSError, ValueError) as error:  # VideoError is an OSError
            failed += 1
            result = {"video": path, "error": str(error)}
            print(f"keras-mvf predict: {path}: {error}", file=sys.stderr)
        results.append(result)
        if not args.json and "error" not in result:
            _print_text(result)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failed else 0
