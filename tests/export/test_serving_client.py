"""examples/serving_client.py: its REST and gRPC requests against the exported SavedModel.

TF Serving itself does not run here (no Docker, no model server binary), so a
small local server stands in for it: a real gRPC `PredictionService` (the
servicer from tensorflow-serving-api) and an HTTP server that reads the REST
`instances` body as TF Serving documents it (named inputs stacked along a new
batch axis, `{"b64": ...}` for binary strings), both calling the SavedModel.
"""

import base64
import http.server
import importlib.util
import json
import os
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from keras_mvf.export import export_saved_model
from tests.export.conftest import LABELS, keras_probabilities

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "serving_client.py")


def load_client():
    spec = importlib.util.spec_from_file_location("serving_client", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def from_json(value):
    """REST row-format values: `{"b64": ...}` is bytes, lists recurse."""
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    model, _ = trained
    base = tmp_path_factory.mktemp("served") / "mvf"
    export_saved_model(model, base, labels=LABELS)
    loaded = tf.saved_model.load(str(base / "1"))

    def run(signature, frames):
        fn = loaded.signatures[signature]
        dtype = fn.structured_input_signature[1]["frames"].dtype
        return {k: v.numpy() for k, v in fn(frames=tf.constant(frames, dtype)).items()}

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            assert request.model_spec.name == "mvf"
            outputs = run(
                request.model_spec.signature_name, tf.make_ndarray(request.inputs["frames"])
            )
            response = predict_pb2.PredictResponse()
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
            return response

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), grpc_server)
    grpc_port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()

    class Rest(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            assert self.path == "/v1/models/mvf:predict"
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            frames = [from_json(instance["frames"]) for instance in body["instances"]]
            outputs = run(body.get("signature_name", "serving_default"), frames)
            rows = [
                {
                    k: (v[i].astype(str) if v.dtype == object else v[i]).tolist()
                    for k, v in outputs.items()
                }
                for i in range(len(frames))
            ]
            payload = json.dumps({"predictions": rows}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    http_server = http.server.HTTPServer(("127.0.0.1", 0), Rest)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    yield {"rest": f"http://127.0.0.1:{http_server.server_port}", "grpc": f"127.0.0.1:{grpc_port}"}
    http_server.shutdown()
    http_server.server_close()
    grpc_server.stop(None)


@pytest.mark.parametrize("api", ["rest", "grpc"])
@pytest.mark.parametrize("signature", ["serving_default", "serving_jpeg"])
def test_client_gets_the_models_predictions(api, signature, server, trained, test_clips):
    client = load_client()
    clips = test_clips[0][:2]
    if api == "rest":
        rows = client.predict_rest(server["rest"], "mvf", clips, signature)
    else:
        rows = client.predict_grpc(server["grpc"], "mvf", clips, signature)
    if signature == "serving_jpeg":  # JPEG is lossy: the model sees the decoded frames.
        clips = np.stack(
            [
                np.stack([tf.io.decode_jpeg(f).numpy() for f in client.encode_jpeg(clip)])
                for clip in clips
            ]
        )
    expected = keras_probabilities(trained[0], clips)
    np.testing.assert_allclose([row["probabilities"] for row in rows], expected, atol=1e-5)
    assert [row["top_k_labels"][0] for row in rows] == [LABELS[i] for i in expected.argmax(1)]


def test_jpeg_payload_is_far_smaller(test_clips):
    client = load_client()
    clips = test_clips[0][:1]
    raw = len(json.dumps(client.rest_body(clips, "serving_default")))
    jpeg = len(json.dumps(client.rest_body(clips, "serving_jpeg")))
    assert jpeg < raw / 2
