"""Builds tl_keras/assets/flowers/ (the embedded default's photos) from the shared tf_flowers subset.

Kept in the repository so the bundle can be rebuilt and audited: a seeded
choice of 100 photos per class, each resized so its shorter side is 160
pixels (LANCZOS, JPEG quality 85), and LICENSE.txt carrying the CC BY 2.0
credit line of every photo shipped.

  python tools/make_embedded_flowers.py --source=../shared/assets/tf_flowers
"""

import argparse
import random
from pathlib import Path

from PIL import Image

PER_CLASS = 100
SHORT_SIDE = 160


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[2] / "shared" / "assets" / "tf_flowers"))
    parser.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "tl_keras" / "assets" / "flowers"))
    args = parser.parse_args()
    source, output = Path(args.source), Path(args.output)
    credits = {}
    lines = (source / "LICENSE.txt").read_text().splitlines()
    header = lines[:3]
    for line in lines[3:]:
        if line.strip():
            credits[line.split(" ", 1)[0]] = line
    kept = []
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpg"))
        chosen = sorted(random.Random(f"flowers-{class_dir.name}").sample(files, PER_CLASS))
        (output / class_dir.name).mkdir(parents=True, exist_ok=True)
        for path in chosen:
            with Image.open(path) as image:
                image = image.convert("RGB")
                scale = SHORT_SIDE / min(image.size)
                size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                image.resize(size, Image.LANCZOS).save(output / class_dir.name / path.name, quality=85)
            kept.append(credits[f"{class_dir.name}/{path.name}"])
    note = (
        f"The {len(kept)} photos in this folder were resized by tl_keras (shorter side {SHORT_SIDE} px, "
        "re-encoded as JPEG quality 85) from TensorFlow's flower_photos dataset; otherwise unchanged."
    )
    (output / "LICENSE.txt").write_text("\n".join([*header, "", note, "", *kept]) + "\n")
    print(f"wrote {len(kept)} photos to {output}")


if __name__ == "__main__":
    main()
