"""Classify a video with a keras_mvf model served by TF Serving, over REST or gRPC.

Serve an export of `keras_mvf.export.export_saved_model` (or `keras-mvf export
--format saved_model`) with

    docker run -p 8500:8500 -p 8501:8501 \
        -v /path/to/serving:/models/mvf -e MODEL_NAME=mvf tensorflow/serving

then

    python examples/serving_client.py video.mp4 --api rest --frames 8 --size 224
    python examples/serving_client.py video.mp4 --api grpc --signature serving_jpeg

`serving_default` takes uint8 clips; `serving_jpeg` takes JPEG-encoded frames,
about a tenth of the payload, which the server decodes, resizes and crops.
gRPC needs `pip install keras-mvf[serving]` (tensorflow-serving-api).
"""

import argparse
import base64
import json
import urllib.request

import cv2
import numpy as np


def sample_clip(video, num_frames, size, frame_interval):
    """One centre clip `(num_frames, size, size, 3)` uint8 RGB, sampled as `keras-mvf predict`
    does (for `serving_jpeg` any frame size works; the server resizes)."""
    from keras_mvf.data import probe, read_frames, sample_indices
    from keras_mvf.data.transforms import transform_clips

    indices = sample_indices(
        "dense", probe(video).num_frames, num_frames, frame_interval, training=False
    )
    clips = read_frames(video, indices[0])[None]
    views, _ = transform_clips(
        clips, training=False, rng=None, crop_size=size, short_side=round(size * 256 / 224)
    )
    return views[0]


def encode_jpeg(clip, quality=90):
    """JPEG bytes of every frame of an RGB clip."""
    encoded = []
    for frame in clip:
        ok, data = cv2.imencode(
            ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise ValueError("OpenCV could not encode a frame as JPEG.")
        encoded.append(data.tobytes())
    return encoded


def rest_body(clips, signature):
    """The JSON body of a REST `:predict` call, in the row (`instances`) format.

    Binary strings travel as `{"b64": ...}` objects, as TF Serving's REST API wants.
    """
    if signature == "serving_jpeg":
        instances = [
            {"frames": [{"b64": base64.b64encode(f).decode("ascii")} for f in encode_jpeg(clip)]}
            for clip in clips
        ]
    else:
        instances = [{"frames": np.asarray(clip, np.uint8).tolist()} for clip in clips]
    return {"signature_name": signature, "instances": instances}


def predict_rest(url, model_name, clips, signature):
    """POSTs to `{url}/v1/models/{model_name}:predict`; returns the `predictions` rows."""
    request = urllib.request.Request(
        f"{url}/v1/models/{model_name}:predict",
        data=json.dumps(rest_body(clips, signature)).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())["predictions"]


def grpc_request(model_name, clips, signature):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the clips."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if signature == "serving_jpeg":
        frames = tf.make_tensor_proto([encode_jpeg(clip) for clip in clips], dtype=tf.string)
    else:
        frames = tf.make_tensor_proto(np.asarray(clips, np.uint8), dtype=tf.uint8)
    request.inputs["frames"].CopyFrom(frames)
    return request


def predict_grpc(target, model_name, clips, signature, timeout=60.0):
    """Calls `PredictionService.Predict`; returns rows shaped like the REST `predictions`."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(grpc_request(model_name, clips, signature), timeout)
    outputs = {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
    rows = []
    for i in range(len(clips)):
        row = {}
        for name, value in outputs.items():
            item = value[i]
            row[name] = [v.decode() for v in item] if item.dtype == object else item.tolist()
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--api", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--rest-url", default="http://localhost:8501")
    parser.add_argument("--grpc-target", default="localhost:8500")
    parser.add_argument("--model-name", default="mvf")
    parser.add_argument(
        "--signature", choices=("serving_default", "serving_jpeg"), default="serving_default"
    )
    parser.add_argument("--frames", type=int, default=8, help="the served model's num_frames")
    parser.add_argument("--size", type=int, default=224, help="the served model's frame size")
    parser.add_argument("--frame-interval", type=int, default=8)
    args = parser.parse_args(argv)

    clips = np.stack(
        [sample_clip(video, args.frames, args.size, args.frame_interval) for video in args.videos]
    )
    if args.api == "rest":
        rows = predict_rest(args.rest_url, args.model_name, clips, args.signature)
    else:
        rows = predict_grpc(args.grpc_target, args.model_name, clips, args.signature)
    for video, row in zip(args.videos, rows, strict=True):
        names = row.get("top_k_labels", row["top_k_indices"])
        ranked = ", ".join(f"{n} {s:.3f}" for n, s in zip(names, row["top_k_scores"], strict=True))
        print(f"{video}: {ranked}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
