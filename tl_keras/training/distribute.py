"""TensorFlow's own distribution strategies and mixed precision, chosen by flag.

Nothing here re-implements distribution: `--strategy` picks a
`tf.distribute` strategy, the run builds, compiles and trains inside its
scope, and Keras splits each global batch across the replicas. What is ours
is the bookkeeping a multi-worker run needs: every worker trains, only the
chief writes checkpoints, history and exports (the others write to a
scratch folder that is removed), and the exported model computes in float32
even when training used float16 or bfloat16.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import keras
import tensorflow as tf

from absl import logging

from tl_keras.config.settings import PRECISIONS, STRATEGIES

# The Keras versions, [from, to), whose private internals the multi-worker workarounds below were written against and tested
# with (setup.py pins the same range). Outside it they are not installed, and a multi-worker run says so.
KERAS_PATCHED_FOR = ((3, 3), (3, 16))


def keras_internals_tested(version: str | None = None) -> bool:
    """Whether this Keras is one the workarounds of private Keras internals were written for."""
    major, minor = (int(part) for part in (version or keras.__version__).split(".")[:2])
    return KERAS_PATCHED_FOR[0] <= (major, minor) < KERAS_PATCHED_FOR[1]


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `--strategy` names. multi_worker reads the cluster from TF_CONFIG."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs TF_CONFIG describing the cluster and this worker (see the README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy={name!r}: must be one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether this process writes the run's files: always, except on non-chief workers of a cluster."""
    config = os.environ.get("TF_CONFIG")
    if not config or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    spec = json.loads(config)
    task = spec.get("task", {})
    task_type, task_id = task.get("type"), int(task.get("index", 0))
    if "chief" in spec.get("cluster", {}):
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


@contextlib.contextmanager
def writable_run_dir(run_dir: Path, chief: bool) -> Iterator[Path]:
    """The run folder on the chief; a scratch folder elsewhere, removed at the end.

    Non-chief workers still execute every save (collective ops must match
    across workers), but what they write never lands beside the chief's.
    """
    if chief:
        yield run_dir
        return
    scratch = Path(tempfile.mkdtemp(prefix=f"{run_dir.name}_worker_"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_resume_state(chief_run_dir: Path, worker_dir: Path) -> None:
    """Gives a non-chief worker the chief's checkpoints, so every worker resumes from the same epoch.

    Works when the run folder is on storage all workers see (a shared or
    network file system, as clusters have); otherwise a restarted worker
    starts from epoch 0 while the chief resumes, and the run stops with a
    collective-op error rather than training on inconsistent state.
    """
    source = chief_run_dir / "checkpoints"
    if not source.is_dir():
        return
    shutil.copytree(source, worker_dir / "checkpoints", dirs_exist_ok=True)
    for name in ("config.json", "split.json"):
        if (chief_run_dir / name).is_file():
            shutil.copy2(chief_run_dir / name, worker_dir / name)


def set_precision(policy: str) -> None:
    """Sets Keras's global dtype policy; the classifier's head is float32 whatever it is."""
    if policy not in PRECISIONS:
        raise ValueError(f"mixed_precision={policy!r}: must be one of {', '.join(PRECISIONS)}")
    keras.mixed_precision.set_global_policy(policy)


def float32_copy(model: keras.Model) -> keras.Model:
    """The same network computing in float32, with the trained weights.

    Mixed-precision layers keep float32 weights already; only their compute
    dtype differs. Rebuilding from the config with every policy set to
    float32 gives a model whose SavedModel and TFLite files are float32
    throughout, which every server and phone runs.
    """
    if all(getattr(layer.dtype_policy, "name", "float32") == "float32" for layer in _all_layers(model)):
        return model
    config = _float32_config(model.get_config())
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _all_layers(model) -> list:
    layers = []
    for layer in getattr(model, "layers", []):
        layers.append(layer)
        layers.extend(_all_layers(layer))
    return layers


def _float32_config(value):
    if isinstance(value, dict):
        if value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(value.get("config"), dict):
            return {**value, "config": {**value["config"], "name": "float32"}}
        return {
            k: ("float32" if k == "dtype" and isinstance(v, str) and v.startswith("mixed_") else _float32_config(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_float32_config(v) for v in value]
    return value


def prepare_for_fit(model: keras.Model) -> None:
    """Works around Keras 3 `fit`/`evaluate` failing at once under MultiWorkerMirroredStrategy.

    Before its first step Keras builds the model from one batch, and under
    a multi-worker strategy it first averages that batch across workers
    with an eager cross-worker `reduce` that cannot take the per-replica
    batch (keras-team/keras#20585, tensorflow/tensorflow#72388). The build
    only needs shapes and dtypes, which this worker's own slice has, so
    this model builds from that instead. A no-op outside multi-worker runs.
    """
    strategy = getattr(model, "_distribute_strategy", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or getattr(model, "_tl_keras_local_build", False):
        return
    if not keras_internals_tested():
        return  # keras_workarounds already said so
    original = model._maybe_symbolic_build  # noqa: SLF001 - the method being worked around

    def local_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda x: strategy.experimental_local_results(x)[0] if isinstance(x, tf.distribute.DistributedValues) else x, batch
                )
                break
        return original(data_batch=data_batch)

    model._maybe_symbolic_build = local_build  # noqa: SLF001
    model._tl_keras_local_build = True  # noqa: SLF001


@contextlib.contextmanager
def keras_workarounds(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Installs, for one multi-worker run only, the fix for per-step logs averaged across workers; removes it after.

    The second half of the Keras bug `prepare_for_fit` works around: Keras
    averages each scalar log over replicas with `strategy.reduce("MEAN", v,
    axis=0)`, which also reduces along an axis a scalar does not have. The
    average across replicas is `axis=None`; that is what Keras computes for
    one-machine strategies, and what the replacement computes for
    multi-worker ones. It replaces a private Keras function, so it is
    installed only for a Keras in `KERAS_PATCHED_FOR`, and only while the run
    that needs it lasts.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    if not keras_internals_tested():
        logging.warning(
            "Keras %s is outside %s-%s, the versions tl_keras's multi-worker workarounds were tested with; they are not installed, "
            "and multi-worker fit may fail (keras-team/keras#20585)",
            keras.__version__,
            *(".".join(map(str, v)) for v in KERAS_PATCHED_FOR),
        )
        yield
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, active, reduction):
        multi_worker = isinstance(active, tf.distribute.MultiWorkerMirroredStrategy) and active.extended._in_multi_worker_mode()  # noqa: SLF001
        if multi_worker and reduction in ("auto", "mean"):
            return tf.nest.map_structure(lambda v: active.reduce("MEAN", v, axis=None), values)
        return original(values, active, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original
