"""How the recipe benchmarks set up one run: the datasets they name and the weights each recipe gets here.

Shared by recipes.py and phase_choice.py so that their rows are runs of the
same configuration (no flags here: each script defines its own).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tl_keras.config.run_config import recipe_config

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
WEIGHTS_1_0 = ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"


def data_settings(dataset: str) -> dict:
    """`flowers`: the bundled photos and the embedded split; `cats_vs_dogs`: the tutorial's set, its validation/ split 80/20."""
    if dataset == "flowers":
        return {"dataset": "flowers"}
    root = ASSETS / "cats_and_dogs_filtered"
    if not root.is_dir():
        sys.exit(f"error: {root} not found; the cats_vs_dogs rows need ../shared/assets")
    return {"image_dir": str(root / "train"), "validation_dir": str(root / "validation"), "test_fraction": 0.2}


def benchmark_config(recipe: str, dataset: str, seed: int, run_root: Path):
    """The recipe's RunConfig for one seed: quiet, no export, its own run folder under `run_root`."""
    overrides = {
        **data_settings(dataset),
        "seed": seed,
        "verbose": 0,
        "export": False,
        "run_dir": str(run_root / f"{recipe}_{dataset}_{seed}"),
        "overwrite": True,
        "name": f"{recipe}_{dataset}",
    }
    config = recipe_config(recipe, **overrides)
    if config.backbone == "mobilenet_v2" and config.alpha in (0.0, 1.0):  # alpha 1.0 is not bundled: the shared real weights file
        config = recipe_config(recipe, **overrides, weights=str(WEIGHTS_1_0))
    return config


def replace_rows(earlier: list[dict], rows: list[dict]) -> list[dict]:
    """A results file's rows after this call: earlier rows of other (recipe, dataset) pairs, then this call's rows."""
    done = {(row["recipe"], row["dataset"]) for row in rows}
    return [row for row in earlier if (row["recipe"], row["dataset"]) not in done] + rows
