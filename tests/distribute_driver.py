"""Subprocess entry for tests/test_distribute.py: device setup must precede any other TensorFlow work.

  python distribute_driver.py run CONFIG_JSON [WEIGHTS_NPZ [KILL_POINT]]
      one run (a worker, when TF_CONFIG is set); writes the final weights to WEIGHTS_NPZ,
      and SIGKILLs itself at KILL_POINT (resume_driver's points)
  python distribute_driver.py compare CONFIG_JSON OUT    # default vs mirrored over 2 logical CPUs
"""

import dataclasses
import json
import sys

import keras
import tensorflow as tf

keras.config.disable_traceback_filtering()  # a failure inside fit shows where


def _record_final_weights(path: str) -> None:
    """Saves the trained model's weights when the run finishes (a non-chief's run folder is removed at its end)."""
    import numpy as np

    from tl_keras.vision import run as run_lib

    original = run_lib.finish_run

    def finish_run(trained, extra):
        np.savez(path, *[np.asarray(w) for w in trained.model.get_weights()])
        return original(trained, extra)

    run_lib.finish_run = finish_run


def main(argv):
    mode, config_path = argv[1], argv[2]
    if mode == "compare":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    config = RunConfig.from_json(config_path)
    if mode == "run":
        if len(argv) > 3:
            _record_final_weights(argv[3])
        if len(argv) > 4:
            import resume_driver

            resume_driver.install(argv[4])
        summary = run_experiment(config)
        print("DRIVER " + json.dumps({"chief": summary["chief"], "replicas": summary["replicas"]}))
        return
    results = {}
    for strategy in ("default", "mirrored"):
        run_dir = f"{config.run_dir}_{strategy}"
        summary = run_experiment(dataclasses.replace(config, strategy=strategy, run_dir=run_dir))
        history = json.loads(open(f"{run_dir}/history.json").read())
        results[strategy] = {"replicas": summary["replicas"], "phases": history["phases"], "accuracy": summary["transfer_accuracy"]}
    with open(argv[3], "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main(sys.argv)
