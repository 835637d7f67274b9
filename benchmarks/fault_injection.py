"""SIGKILL a real run at seeded points (feature caching, every phase and unfreezing stage, evaluation, export), resume, compare.

Each trial: a fresh run folder, a run that kills itself at the point
(`tests/resume_driver.py` slips the hook in; the library knows nothing of
it), then the same config with `--resume`. The resumed run must end with the
uninterrupted run's final weights (to 1e-6), the same metrics, exactly one
export version and no staging folder left behind.

The run: the `digits` recipe without source pretraining, 3 frozen epochs on
cached features (clean + 2 augmented views; `head_init=random`, so the
frozen phase has Keras epochs to kill, not one convex fit), 4 fine-tuning epochs in two
unfreezing stages, exported.

  python benchmarks/fault_injection.py                         # 10 seeded kill points
  python benchmarks/fault_injection.py --points=cache:1,evaluate,export
  python benchmarks/fault_injection.py --checkpoint_every=1 --points=phase:frozen:1:2,phase:fine_tune_1:4:2,phase:fine_tune_2:6:2

Prints a table of kill points and outcomes and writes benchmarks/results/fault_injection.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "tests" / "resume_driver.py"

flags.DEFINE_integer("trials", 10, "Kill points: one in each stage of the run, the rest drawn (without replacement) from all candidates.")
flags.DEFINE_integer("seed", 0, "Seed of the draw.")
flags.DEFINE_list("points", [], "Explicit kill points instead of a draw (see tests/resume_driver.py).")
flags.DEFINE_integer("checkpoint_every", 0, "--checkpoint_every of the killed runs: with 1, a kill inside an epoch resumes after its "
                     "last batch, not from the epoch's start.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "fault_injection.json"), "JSON results file.")
FLAGS = flags.FLAGS

# Global 0-based epochs: frozen 0-2, fine_tune_1 3-4, fine_tune_2 5-6; 4 batches per epoch.
CANDIDATES = (
    ["cache:0", "cache:2"]
    + [f"phase:frozen:{e}:{b}" for e in (0, 1, 2) for b in (0, 2)]
    + [f"phase:fine_tune_1:{e}:{b}" for e in (3, 4) for b in (0, 2)]
    + [f"phase:fine_tune_2:{e}:{b}" for e in (5, 6) for b in (0, 2)]
    + ["evaluate", "export"]
)


def draw_points(trials: int, seed: int) -> list[str]:
    """One seeded point in each stage of the run (caching, each phase, evaluation, export), the rest drawn from all."""
    rng = np.random.default_rng(seed)
    stages = {}
    for point in CANDIDATES:
        stage = point.rsplit(":", 2)[0] if point.startswith("phase:") else point.split(":")[0]
        stages.setdefault(stage, []).append(point)
    chosen = [str(rng.choice(group)) for group in stages.values()][:trials]
    rest = [p for p in CANDIDATES if p not in chosen]
    chosen += [str(p) for p in rng.choice(rest, size=max(0, min(trials - len(chosen), len(rest))), replace=False)]
    return chosen


def base_config(root: Path):
    from tl_keras.config.run_config import recipe_config

    return recipe_config(
        "digits", weights="none", head_init="random", frozen_epochs=3, fine_tune_epochs=4, unfreeze_schedule="3,all",
        early_stopping_patience=0,
        lr_schedule="cosine", flip="horizontal", feature_cache_augment_passes=2, dropout=0.3, compare_scratch=False,
        export=True, verbose=0, seed=5, name="faults", export_dir=str(root / "exports_reference"), run_dir=str(root / "reference"),
    )


def _drive(config_file: Path, point: str | None = None, timeout: float = 600):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [sys.executable, str(DRIVER), str(config_file)] + ([point] if point else [])
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    return result.returncode, result.stderr


def _final(run_dir: Path):
    import keras

    weights = [w.numpy() for w in keras.saving.load_model(run_dir / "model.keras", compile=False).weights]
    metrics = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    return weights, metrics


def trial(point: str, root: Path, reference) -> dict:
    from tl_keras.config.run_config import RunConfig

    base = RunConfig.from_json(root / "reference.json")
    run_dir, export_dir = root / f"run_{point.replace(':', '_')}", root / f"exports_{point.replace(':', '_')}"
    config = dataclasses.replace(base, run_dir=str(run_dir), export_dir=str(export_dir), checkpoint_every=FLAGS.checkpoint_every)
    killed_file, resumed_file = root / "killed.json", root / "resumed.json"
    killed_file.write_text(config.to_json())
    resumed_file.write_text(dataclasses.replace(config, resume=True).to_json())
    started = time.perf_counter()
    code, err = _drive(killed_file, point)
    row = {"point": point, "killed": code == -signal.SIGKILL}
    if not row["killed"]:
        row.update(outcome="not killed", detail=f"exit {code}: {err[-300:]}")
        return row
    from tl_keras.training import resume as resume_lib

    state = resume_lib.load_state(resume_lib.state_path(run_dir), config.resolved().fingerprint())
    row["state_after_kill"] = None if state is None else f"{state.phase} after epoch {state.epoch}, batch {state.step}"
    staging_after_kill = [p.name for p in (export_dir / "faults").glob(".*")] if (export_dir / "faults").is_dir() else []
    visible_after_kill = (
        sorted(p.name for p in (export_dir / "faults").iterdir() if not p.name.startswith(".")) if (export_dir / "faults").is_dir() else []
    )
    code, err = _drive(resumed_file)
    row["resume_s"] = round(time.perf_counter() - started, 1)
    if code != 0:
        row.update(outcome="resume failed", detail=err.strip().splitlines()[-1][:300] if err.strip() else f"exit {code}")
        return row
    weights, metrics = _final(run_dir)
    difference = max(float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(weights, reference[0], strict=True))
    versions = (
        sorted(p.name for p in (export_dir / "faults").iterdir() if not p.name.startswith(".")) if (export_dir / "faults").is_dir() else []
    )
    leftovers = [p.name for p in (export_dir / "faults").glob(".*.partial-*")] if (export_dir / "faults").is_dir() else []
    same = difference <= 1e-6 and metrics == reference[1] and versions == ["1"] and not leftovers and visible_after_kill == []
    row.update(
        outcome="identical" if same else "DIFFERENT",
        max_weight_difference=difference,
        same_metrics=metrics == reference[1],
        export_versions=versions,
        staging_left_by_kill=len(staging_after_kill),
        staging_after_resume=len(leftovers),
        versions_visible_after_kill=visible_after_kill,
    )
    return row


def main(argv):
    from tl_keras.config.run_config import RunConfig

    points = FLAGS.points or draw_points(FLAGS.trials, FLAGS.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reference_config = base_config(root)
        (root / "reference.json").write_text(reference_config.to_json())
        started = time.perf_counter()
        code, err = _drive(root / "reference.json")
        if code != 0:
            raise SystemExit(f"the uninterrupted run failed: {err[-2000:]}")
        reference_s = time.perf_counter() - started
        reference = _final(Path(reference_config.run_dir))
        assert isinstance(RunConfig.from_json(root / "reference.json"), RunConfig)
        rows = [trial(point, root, reference) for point in points]
    print(f"\nuninterrupted run: {reference_s:.0f} s; {len(rows)} kill points, then --resume")
    print(f"{'kill point':<26}{'killed':>7}{'outcome':>15}{'max |dw|':>11}{'metrics':>9}{'versions':>10}{'staging':>9}")
    for r in rows:
        diff = f"{r['max_weight_difference']:.1e}" if "max_weight_difference" in r else "-"
        print(f"{r['point']:<26}{str(r['killed']):>7}{r['outcome']:>15}{diff:>11}{str(r.get('same_metrics', '-')):>9}"
              f"{','.join(r.get('export_versions', [])) or '-':>10}{r.get('staging_after_resume', '-')!s:>9}")
        if "detail" in r:
            print(f"    {r['detail']}")
    result = {"seed": FLAGS.seed, "checkpoint_every": FLAGS.checkpoint_every, "reference_s": round(reference_s, 1), "trials": rows,
              "all_identical": all(r["outcome"] == "identical" for r in rows)}
    out = Path(FLAGS.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    if not result["all_identical"]:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
