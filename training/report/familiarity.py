"""The training report's familiarity section: the ROC of unfamiliar frames against training frames.

``add_familiarity_to_report`` adds it to the report ``training.report.write`` wrote (report.json's
``familiarity``, ``familiarity_roc.png``, a section of report.html), for every task.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from training.report.html_page import rows_table
from training.report.plots import roc_plot
from training.report.write import REPORT_HTML, REPORT_JSON, json_safe, write_atomic

FAMILIARITY_PNG = "familiarity_roc.png"


def plot_familiarity_roc(oof: np.ndarray, unfamiliar: dict[str, np.ndarray]) -> bytes:
    """One curve per kind: its frames (positives) against the out-of-fold training frames."""
    curves = [
        (kind, np.r_[np.zeros(len(oof)), np.ones(len(distances))], np.r_[oof, distances])
        for kind, distances in unfamiliar.items()
    ]
    return roc_plot(curves, "unfamiliar frames vs out-of-fold training frames (distance)")


def familiarity_rows(table: dict[str, dict[str, float]]) -> list[list[Any]]:
    """kind | frames | AUC | detected at 1 % | detected at 5 % false alarms (the report's and the screen's)."""
    return [
        [
            kind,
            int(figures["frames"]),
            f"{figures['auc']:.3f}",
            f"{figures['detected_at_0.01']:.0%}",
            f"{figures['detected_at_0.05']:.0%}",
        ]
        for kind, figures in table.items()
    ]


FAMILIARITY_HEADER = ["unfamiliar kind", "frames", "AUC", "detected at 1 % FA", "detected at 5 % FA"]


def familiarity_html(
    field: dict[str, Any],
    table: dict[str, dict[str, float]],
    skipped: str | None,
    knn_table: dict[str, dict[str, float]] | None = None,
) -> str:
    e = html.escape
    calibration = field["calibration"]
    parts = [
        "<h2>Familiarity (unfamiliar frames)</h2>",
        f"<p>{field['components']} component(s), {field['dims']} directions (probabilistic PCA, "
        f"Mahalanobis); threshold <b>{field['threshold']:.3f}</b>, calibrated at "
        f"{field['false_alarm_rate']:.1%} false alarms on {calibration['frames']} out-of-fold training "
        f"frames (median distance {calibration['oof_median']:.3f}). A frame above it is "
        "<code>unfamiliar</code>.</p>",
    ]
    if skipped:
        parts.append(f"<p class='warn'>Not measured on unfamiliar frames: {e(skipped)}.</p>")
        return "".join(parts)
    parts += [
        "<p>Frames no model saw (training/data/unfamiliar.py): crops of photographs of other subjects, "
        "noise, uniform (black, white, flat colour) frames and other drawn scenes (landscape, interior, "
        "portrait-like). Detection rates at the thresholds that give 1 % and 5 % false alarms on the "
        "out-of-fold training frames.</p>",
        rows_table(FAMILIARITY_HEADER, familiarity_rows(table)),
        f"<img class='plot' src='{FAMILIARITY_PNG}' alt='familiarity ROC'>",
    ]
    if knn_table:
        parts += [
            "<h3>For comparison: k-NN (k = 5, L2-normalised features), the same frames and folds</h3>",
            rows_table(FAMILIARITY_HEADER, familiarity_rows(knn_table)),
        ]
    return "".join(parts)


def add_familiarity_to_report(out_dir: Path, outcome: Any) -> None:
    """``outcome``: training.familiarity_step.FamiliarityOutcome."""
    out_dir = Path(out_dir)
    if outcome.unfamiliar:
        write_atomic(
            out_dir / FAMILIARITY_PNG, plot_familiarity_roc(outcome.described.oof, outcome.unfamiliar)
        )
    report = json.loads((out_dir / REPORT_JSON).read_text())
    summary = {key: value for key, value in outcome.manifest_field.items() if key not in ("means", "basis")}
    report["familiarity"] = {
        **summary,
        "oof_distances": outcome.described.oof,
        "skipped": outcome.skipped,
        "knn_comparison": outcome.knn_table,
    }
    write_atomic(out_dir / REPORT_JSON, (json.dumps(json_safe(report), indent=2) + "\n").encode())
    section = familiarity_html(outcome.manifest_field, outcome.table, outcome.skipped, outcome.knn_table)
    page = (out_dir / REPORT_HTML).read_text().replace("</body>", section + "</body>", 1)
    write_atomic(out_dir / REPORT_HTML, page.encode())
