"""Runs one training in a subprocess and, if asked, SIGKILLs itself at a named point (tests and benchmarks/fault_injection.py).

  python resume_driver.py CONFIG_JSON [POINT]

POINT is where the kill lands; nothing in the library knows about it, the
hooks are slipped in here:

* ``PHASE EPOCH`` or ``phase:PHASE:EPOCH[:BATCH]``: after batch BATCH
  (default 0) of the 0-based global epoch EPOCH of phase PHASE, so one
  epoch has been checkpointed and the next is part done;
* ``cache:BATCH``: while the frozen phase caches backbone features, after
  BATCH batches;
* ``evaluate``: when the final evaluation starts predicting;
* ``export``: mid-export, after the SavedModel is written to its staging
  folder and before the version appears.
"""

import os
import signal
import sys

import keras


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


class _KillMidEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int, batch: int = 0):
        super().__init__()
        self.kill_epoch, self.kill_batch = epoch, batch
        self.epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch == self.kill_batch:
            _die()


def install(point: str) -> None:
    """Arms the kill at `point` in this process."""
    from tl_keras.export import endpoints
    from tl_keras.training import features as features_lib
    from tl_keras.vision import run as run_lib
    from tl_keras.training import phase as training

    kind, _, rest = point.partition(":")
    if kind == "phase":
        parts = rest.split(":")
        phase, epoch, batch = parts[0], int(parts[1]), int(parts[2]) if len(parts) > 2 else 0
        original_phase = training.run_phase

        def run_phase(model, name, *args, extra_callbacks=(), **kwargs):
            if name == phase:
                extra_callbacks = (*extra_callbacks, _KillMidEpoch(epoch, batch))
            return original_phase(model, name, *args, extra_callbacks=extra_callbacks, **kwargs)

        training.run_phase = run_phase
    elif kind == "cache":
        after = int(rest)
        original_cache = features_lib.cache_features

        def cache_features(extractor, batches, **kwargs):
            counted = batches.enumerate().map(lambda i, batch: _kill_at(i, after, batch))
            return original_cache(extractor, counted, **kwargs)

        features_lib.cache_features = cache_features
    elif kind == "evaluate":
        def evaluation_starts(*args, **kwargs):
            _die()

        # The temperature fit (on validation) or, with --nocalibrate, the held-out pass: whichever comes first.
        run_lib.predict_dataset = evaluation_starts
        run_lib.inspect_split = evaluation_starts
    elif kind == "export":
        original_carry = endpoints.carry_hub_modules

        def write_then_die(*args):  # the SavedModel and the Keras copy are written in the staging folder, not yet renamed
            original_carry(*args)
            _die()

        endpoints.carry_hub_modules = write_then_die
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def _kill_at(index, after, batch):
    import tensorflow as tf

    def maybe_die(i):
        if int(i) == after:
            _die()
        return i

    index = tf.py_function(maybe_die, [index], tf.int64)
    with tf.control_dependencies([index]):
        return tf.nest.map_structure(tf.identity, batch)


def main(argv):
    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    config = RunConfig.from_json(argv[1])
    if len(argv) == 4:  # the original form: PHASE EPOCH
        install(f"phase:{argv[2]}:{argv[3]}")
    elif len(argv) == 3:
        install(argv[2])
    run_experiment(config)


if __name__ == "__main__":
    main(sys.argv)
