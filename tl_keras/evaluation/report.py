"""`report.html`: one self-contained page (pictures embedded) that shows what a model does on a split.

One file, no scripts and no external links, so it can be mailed, attached to
a ticket or opened from an air-gapped machine and look the same. Sections
carry stable ids (`metrics`, `curves`, `confusion`, `per-class`, `errors`,
`grad-cam`, `calibration`, `tta`) that the browser test checks.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Sequence

from tl_keras.io import atomic
from tl_keras.evaluation.calibration import why_not_adopted

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; } td.text { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; } .note { color: #555; font-size: 0.9em; }
nav a { margin-right: 1em; }
"""


def _image(path: str | os.PathLike | None, alt: str) -> str:
    if not path or not Path(path).is_file():
        return f'<p class="note">({html.escape(alt)}: not available)</p>'
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_report(
    path: str | os.PathLike, metrics: dict, pictures: dict[str, Path | None], *, title: str, notes: Sequence[str] = (),
    errors_html: str | None = None, noun: str = "images", image_sections: bool = True,
) -> Path:
    """Writes the page, with only the sections that apply to its run.

    `pictures` maps section keys (curves, confusion_matrix, per_class,
    errors, error_classes..., grad_cam, reliability) to PNGs; `errors_html`
    replaces the mistakes pictures (a text model's mistakes are a table).
    `noun` counts the examples; `image_sections` adds Grad-CAM and
    test-time augmentation, which only an image model has. Top-k accuracy
    is shown only where k is below the number of classes (top-2 of two
    classes is always 1).
    """
    top_k = next((key for key in metrics if key.startswith("top_") and key.endswith("_accuracy")), None)
    if top_k and int(top_k.split("_")[1]) >= len(metrics["per_class"]):
        top_k = None
    summary_rows: list[tuple[str, object]] = [(noun, metrics["examples"]), ("accuracy", metrics["accuracy"])]
    if top_k:
        summary_rows.append((top_k.replace("_", " "), metrics[top_k]))
    summary_rows += [("macro F1", metrics["macro"]["f1"]), ("weighted F1", metrics["weighted"]["f1"])]
    calibration = metrics.get("calibration", {})
    if "ece" in calibration:
        summary_rows.append(("expected calibration error", calibration["ece"]))
    tta = metrics.get("tta")
    if tta:
        summary_rows.append((f"accuracy with TTA ({tta['mode']}, {tta['views']} views)", tta["accuracy"]))

    sections = [
        ("metrics", "Metrics", _table(["", "value"], summary_rows)),
        ("curves", "Training curves", _image(pictures.get("curves"), "training curves")),
        ("confusion", "Confusion matrix", _image(pictures.get("confusion_matrix"), "confusion matrix")),
        (
            "per-class",
            "Per class",
            _image(pictures.get("per_class"), "per-class bars")
            + _table(
                ["class", "precision", "recall", "F1", "support"],
                [(name, row["precision"], row["recall"], row["f1"], row["support"]) for name, row in metrics["per_class"].items()],
            ),
        ),
        ("errors", "Most confident mistakes", _errors_section(pictures) if errors_html is None else errors_html),
        ("calibration", "Calibration", _calibration_text(calibration, noun) + _image(pictures.get("reliability"), "reliability diagram")),
    ]
    if image_sections:
        sections[-1:-1] = [(
            "grad-cam",
            "Where the model looks (Grad-CAM)",
            _image(pictures.get("grad_cam"), "Grad-CAM overlays")
            + (
                f'<p class="note">Maps: {html.escape(metrics.get("explained_with", "grad_cam"))}; '
                "red is where evidence for the predicted class lies.</p>"
            ),
        )]
        sections.append(("tta", "Test-time augmentation", _tta_text(metrics)))
    return page(path, title, sections, notes)


def page(path: str | os.PathLike, title: str, sections: Sequence[tuple[str, str, str]], notes: Sequence[str] = ()) -> Path:
    """Writes one self-contained page of (id, heading, HTML) sections with a link bar; returns its path."""
    nav = "".join(f'<a href="#{key}">{html.escape(heading)}</a>' for key, heading, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{html.escape(heading)}</h2>{content}</section>' for key, heading, content in sections)
    extra = "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
    text = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_STYLE}</style></head>'
        f"<body><h1>{html.escape(title)}</h1>{extra}<nav>{nav}</nav>{body}</body></html>"
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, text)
    return out


def image_tag(path: str | os.PathLike | None, alt: str) -> str:
    """A PNG embedded in the page, or a note that it is not available."""
    return _image(path, alt)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An HTML table, every cell escaped, floats to four places."""
    return _table(header, rows)


def _errors_section(pictures: dict[str, Path | None]) -> str:
    if not pictures.get("errors"):
        return '<p class="note">No mistakes on this split.</p>'
    parts = [_image(pictures["errors"], "highest-loss mistakes")]
    per_class = sorted(key for key in pictures if key.startswith("errors_class:"))
    if per_class:
        parts.append("<h3>By true class (classes with the most mistakes first)</h3>")
        parts += [_image(pictures[key], key.split(":", 1)[1]) for key in per_class]
    return "".join(parts)


def _calibration_text(calibration: dict, noun: str = "images") -> str:
    if not calibration:
        return '<p class="note">Not measured.</p>'
    if "temperature" not in calibration:
        return f"<p>Expected calibration error {calibration['ece']:.4f} over {calibration['bins']} confidence bins.</p>"
    if calibration.get("adopted") is False:
        return _table(
            ["", "ECE", "negative log-likelihood"], [("the model as trained", calibration["ece_before"], calibration["nll_before"])]
        ) + (
            f'<p class="note">A temperature of {calibration["fitted_temperature"]:.3f} was fitted on {calibration["fitted_on"]} '
            f'({calibration["validation_examples"]} {noun}), but {html.escape(why_not_adopted(calibration))}, so the head keeps '
            "T = 1.</p>"
        )
    return (
        _table(
            ["", "ECE", "negative log-likelihood"],
            [
                ("before temperature scaling", calibration["ece_before"], calibration["nll_before"]),
                (
                    f"after (T = {calibration['temperature']:.3f}, fitted on {calibration['fitted_on']})",
                    calibration["ece_after"],
                    calibration["nll_after"],
                ),
            ],
        )
        + '<p class="note">The temperature is folded into the exported head: served and TFLite probabilities are the calibrated ones; '
        "top-1 is unchanged.</p>"
    )


def _tta_text(metrics: dict) -> str:
    tta = metrics.get("tta")
    if not tta:
        return '<p class="note">Not measured (run with --tta=flip, crops or flip_crops).</p>'
    change = tta["accuracy"] - metrics["accuracy"]
    verdict = "gain" if change > 0 else ("loss" if change < 0 else "no change")
    return _table(["", "accuracy"], [("single view", metrics["accuracy"]), (f"{tta['mode']} ({tta['views']} views)", tta["accuracy"])]) + (
        f"<p>Measured {verdict}: {change:+.4f} ({change * metrics['examples']:+.0f} images of {metrics['examples']}).</p>")
