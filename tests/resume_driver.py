"""Runs one training in a subprocess and, if asked, SIGKILLs itself mid-epoch (for tests/test_resume.py).

  python resume_driver.py CONFIG_JSON [PHASE EPOCH]

The kill comes from inside, after the first batch of the 0-based global
epoch EPOCH of phase PHASE, so it lands at a known point: one epoch has
finished and been checkpointed, the next is half done. Nothing in the
library knows about it: the callback is slipped into `run_phase` here.
"""

import os
import signal
import sys

import keras

from tl_keras import training
from tl_keras.config import RunConfig
from tl_keras.run import run_experiment


class _KillMidEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.kill_epoch = epoch
        self.epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch == 0:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv):
    config = RunConfig.from_json(argv[1])
    if len(argv) > 2:
        phase, epoch = argv[2], int(argv[3])
        original = training.run_phase

        def run_phase(model, name, *args, extra_callbacks=(), **kwargs):
            if name == phase:
                extra_callbacks = (*extra_callbacks, _KillMidEpoch(epoch))
            return original(model, name, *args, extra_callbacks=extra_callbacks, **kwargs)

        training.run_phase = run_phase
    run_experiment(config)


if __name__ == "__main__":
    main(sys.argv)
