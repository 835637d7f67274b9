"""TF Serving warmup requests: the first live request should not pay for graph setup.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of
`PredictionLog` protos from tensorflow-serving-api) when it loads a version.
Ours exercise both signatures and the JPEG and PNG decoders.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tl_keras.export.signatures import BYTES_INPUT, PIXELS_INPUT, PIXELS_SIGNATURE, SERVING_SIGNATURE


def _sample_image(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1).astype(np.uint8)


def warmup_requests(model_name: str) -> list:
    """PredictionLog protos: one JPEG, a JPEG+PNG batch, one pixel array."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    jpeg = tf.io.encode_jpeg(_sample_image(240, 320)).numpy()
    png = tf.io.encode_png(_sample_image(96, 128)).numpy()
    pixels = _sample_image(64, 64)[None].astype(np.float32)
    payloads = [
        (SERVING_SIGNATURE, BYTES_INPUT, tf.make_tensor_proto([jpeg], dtype=tf.string)),
        (SERVING_SIGNATURE, BYTES_INPUT, tf.make_tensor_proto([jpeg, png], dtype=tf.string)),
        (PIXELS_SIGNATURE, PIXELS_INPUT, tf.make_tensor_proto(pixels, dtype=tf.float32)),
    ]
    logs = []
    for signature, input_name, tensor in payloads:
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
        request.inputs[input_name].CopyFrom(tensor)
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup_requests(path: str | os.PathLike, model_name: str) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in warmup_requests(model_name):
            writer.write(log.SerializeToString())


def read_warmup_requests(path: str | os.PathLike) -> list:
    """The PredictionLog protos of a warmup file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
