"""Transfer against training from scratch: same network, same data, same epochs, several label budgets.

The seeds judge transfer learning this way: the gap is largest with few
labels and closes as labels grow, and the curve shows where this backbone
stops paying for itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Sequence

from tl_keras.io.run_folder import RunFolder
from tl_keras.io import atomic
from tl_keras.config.run_config import RunConfig
from tl_keras.evaluation.metrics import _pyplot
from tl_keras.run import run_experiment


def compare_transfer_scratch(config: RunConfig, labels_per_class: Sequence[int], out_dir: str | os.PathLike) -> dict:
    """Runs transfer and scratch at each label budget; writes a table, JSON and two plots.

    Returns:
        {"rows": [{labels_per_class, transfer_accuracy, scratch_accuracy, ...}], "files": {...}}
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for count in sorted(labels_per_class):
        run = dataclasses.replace(
            config, max_train_per_class=count, compare_scratch=True, export=False, run_dir=str(out / f"labels_{count}"), overwrite=True
        )
        summary = run_experiment(run)
        rows.append({
            "labels_per_class": count,
            "train_images": sum(summary["counts"]["train"].values()),
            "transfer_accuracy": summary["transfer_accuracy"],
            "scratch_accuracy": summary["scratch_accuracy"],
            "transfer_minus_scratch": summary["transfer_minus_scratch"],
            "kept_phase": summary["kept_phase"],
            "evaluated_on": summary["evaluated_on"],
            "run_dir": summary["run_dir"],
        })
    files = {
        "json": out / "transfer_vs_scratch.json",
        "by_labels": out / "accuracy_vs_labels.png",
        "by_epoch": out / "accuracy_vs_epoch.png",
    }
    atomic.write_json(files["json"], {"config": config.to_dict(), "rows": rows})
    _plot_by_labels(rows, files["by_labels"])
    _plot_by_epoch(Path(rows[-1]["run_dir"]), files["by_epoch"], rows[-1]["labels_per_class"])
    return {"rows": rows, "files": {k: str(v) for k, v in files.items()}}


def format_table(rows: list[dict]) -> str:
    lines = [f"{'labels/class':>12}{'train imgs':>11}{'transfer':>10}{'scratch':>9}{'gap':>8}  kept phase"]
    for r in rows:
        lines.append(
            f"{r['labels_per_class']:>12}{r['train_images']:>11}{r['transfer_accuracy']:>10.3f}{r['scratch_accuracy']:>9.3f}"
            f"{r['transfer_minus_scratch']:>+8.3f}  {r['kept_phase']}"
        )
    return "\n".join(lines)


def _plot_by_labels(rows: list[dict], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    counts = [r["labels_per_class"] for r in rows]
    ax.plot(counts, [r["transfer_accuracy"] for r in rows], "o-", label="pretrained + two phases")
    ax.plot(counts, [r["scratch_accuracy"] for r in rows], "s--", label="random init, end to end")
    ax.set_xscale("log")
    ax.set_xticks(counts, labels=[str(c) for c in counts])
    ax.set_xlabel("training labels per class")
    ax.set_ylabel(f"{rows[0]['evaluated_on']} accuracy")
    ax.set_title("transfer vs scratch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_by_epoch(run_dir: Path, path: Path, count: int) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    folder = RunFolder(run_dir)
    for history_file, label in ((folder.history, "transfer"), (folder.scratch.history, "scratch")):
        history = json.loads(history_file.read_text())
        for phase in history["phases"]:
            values = phase["history"].get("val_accuracy", [])
            epochs = range(phase["first_epoch"], phase["first_epoch"] + len(values))
            ax.plot(list(epochs), values, label=f"{label}: {phase['name']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{count} labels per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
