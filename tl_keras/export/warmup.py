"""TF Serving warmup requests: the first live request should not pay for graph setup.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord of
`PredictionLog` protos from tensorflow-serving-api) when it loads a version.
Each modality chooses its requests (`vision.warmup`: a JPEG, a JPEG+PNG
batch, pixels; `text.export`: strings in several scripts, token ids); the
file format is written and read here.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence


def write_warmup_requests(path: str | os.PathLike, model_name: str, payloads: Sequence[tuple[str, Mapping[str, object]]]) -> None:
    """Writes one PredictionLog per (signature name, {input name: TensorProto}) in `payloads`, in order."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in payloads:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for key, tensor in inputs.items():
                request.inputs[key].CopyFrom(tensor)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup_requests(path: str | os.PathLike) -> list:
    """The PredictionLog protos of a warmup file, in order."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
