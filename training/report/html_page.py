"""The training report as one self-contained HTML page (plots and thumbnails embedded as base64)."""

from __future__ import annotations

import base64
import html
from typing import Any

from training.fit.crossval import CVResult, MultiLabelCV
from training.fit.metrics import PER_LABEL_METRICS, SCALAR_METRICS, SET_METRICS
from training.report.formatting import METRIC_TITLES, SET_TITLES, fmt, mean_std
from training.report.tables import head_metric_names

HEADS_PNG = "heads.png"  # the heads plot the heads section shows (written by training.report.write)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em 1em; }
.frames { display: flex; flex-wrap: wrap; gap: 1em; }
.frame { width: 180px; font-size: 0.8em; word-break: break-all; }
.frame img { width: 112px; height: 112px; display: block; }
img.plot { max-width: 100%; border: 1px solid #eee; margin: 0.3em; }
"""


def render_html(
    *,
    created_at,
    cv,
    other_cv,
    dataset_summary,
    neardup,
    thresholds,
    guard,
    parity,
    manifest,
    worst_frames,
    images,
    other_images=None,
) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>camsort training report — {e(', '.join(cv.labels))}</title><style>{STYLE}</style></head><body>",
        "<h1>camsort training report</h1>",
        f"<p>created {e(created_at)} · labels: {e(', '.join(cv.labels))} · task: {e(cv.task)}</p>",
        *_model_section(manifest),
        *_training_set_section(dataset_summary, neardup),
        f"<h2>Cross-validation ({cv.folds} grouped folds, seed {cv.seed})</h2>",
        _cv_tables(cv),
    ]
    for name, other in other_cv.items():
        parts.append(
            f"<h3>For comparison: {e(name)} features, the same frames and folds</h3>" + _cv_tables(other)
        )
        for plot_name, png in (other_images or {}).get(name, {}).items():
            parts.append(_img(plot_name, png))
    parts += _fine_tuning_section((manifest or {}).get("fine_tuning") or {})
    parts += _thresholds_section(thresholds)
    parts.append("<h2>Plots</h2>")
    for name, png in images.items():
        parts.append(_img(name, png))

    parts.append("<h2>int8 quantization guard</h2>")
    if guard is None:
        parts.append("<p>Not run (fp32 requested).</p>")
    else:
        verdict = "<span class='pass'>pass</span>" if guard.passed else "<span class='fail'>fail</span>"
        parts.append(f"<p>{verdict}: {e(guard.reason)}</p>" + kv_table(guard.to_dict()))

    parts.append("<h2>Export parity (ONNX vs Keras + LightGBM)</h2>")
    parts.append(kv_table(_flatten(parity)) if parity else "<p>Not run.</p>")
    parts += _worst_frames_section(worst_frames)
    return "\n".join(parts)


def _model_section(manifest: dict[str, Any] | None) -> list[str]:
    if not manifest:
        return ["<p class='warn'>No model was exported with this report.</p>"]
    parts = []
    if manifest.get("weights") == "none":
        parts.append(
            "<p class='warn'>The backbone was randomly initialised (<code>--weights none</code>): "
            "these figures say nothing about a model built on ImageNet weights.</p>"
        )
    parts.append("<h2>Model</h2>")
    keys = ("model_version", "model_sha256", "backbone", "weights", "precision", "created_at")
    decision = (manifest.get("quantization") or {}).get("decision")
    parts.append(kv_table({key: manifest.get(key) for key in keys} | {"precision decision": decision}))
    return parts


def _training_set_section(dataset_summary: dict[str, Any], neardup: dict[str, Any]) -> list[str]:
    parts = ["<h2>Training set</h2>"]
    parts.append(kv_table({key: value for key, value in dataset_summary.items() if key != "skipped"}))
    skipped = dataset_summary.get("skipped") or []
    if skipped:
        parts.append(f"<p>{len(skipped)} file(s) skipped:</p>")
        parts.append(
            rows_table(["uri", "reason"], [[s.get("uri", ""), s.get("reason", "")] for s in skipped])
        )
    parts.append("<h3>Near-duplicate groups</h3>" + kv_table(neardup))
    return parts


def _fine_tuning_section(tuning: dict[str, Any]) -> list[str]:
    if not tuning:
        return []
    e = html.escape
    parts = ["<h2>Fine-tuning</h2>"]
    parts.append(
        f"<p>{e(str(tuning.get('decision', '')))}. Evaluation: {e(str(tuning.get('evaluation', '')))}.</p>"
    )
    parts.append(
        kv_table(_flatten({k: v for k, v in tuning.items() if k not in ("history_final", "layers")}))
    )
    history = tuning.get("history_final") or []
    if history:
        parts.append("<h3>Final fine-tuning on all frames, per epoch</h3>")
        parts.append(
            rows_table(
                ["epoch", "loss", "accuracy"],
                [[row["epoch"], fmt(row["loss"]), fmt(row["accuracy"])] for row in history],
            )
        )
    return parts


def _thresholds_section(thresholds) -> list[str]:
    rows = [
        [
            rule.label,
            f"{rule.threshold:.4f}",
            rule.method,
            fmt(rule.precision),
            fmt(rule.recall),
            f"{rule.accepted} / {rule.predicted}",
        ]
        for rule in thresholds.per_label
    ]
    header = ["label", "threshold", "rule", "OOF precision at t", "recall at t", "accepted / predicted"]
    return [
        f"<h2>Decision thresholds (target precision {thresholds.target_precision:.2f})</h2>",
        rows_table(header, rows),
        f"<p>Coverage (frames not <code>unknown</code>): {thresholds.coverage:.1%}; "
        f"accuracy on covered frames: {fmt(thresholds.covered_accuracy)}.</p>",
    ]


def _worst_frames_section(worst_frames) -> list[str]:
    e = html.escape
    parts = [f"<h2>Most confident mistakes (out-of-fold, {len(worst_frames)})</h2>"]
    if not worst_frames:
        parts.append("<p>None: every out-of-fold answer was right.</p>")
    parts.append("<div class='frames'>")
    for frame in worst_frames:
        thumbnail = base64.b64encode(frame.thumbnail_jpeg).decode()
        parts.append(
            f"<div class='frame'><img alt='{e(frame.uri)}' src='data:image/jpeg;base64,{thumbnail}'>"
            f"true <b>{e(frame.true_label)}</b>, predicted <b>{e(frame.predicted_label)}</b> "
            f"({frame.confidence:.3f})<br>{e(frame.uri)}"
            + (
                f"<br><a href='{e(frame.label_link)}'>fix the label</a> "
                f"<small>(camsort label {e(frame.label_set)})</small>"
                if frame.label_link
                else ""
            )
            + "</div>"
        )
    parts.append("</div></body></html>")
    return parts


def _img(name: str, png: bytes) -> str:
    return f"<img class='plot' alt='{html.escape(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _cv_tables(cv: CVResult) -> str:
    rows = [
        [str(fold.fold), str(fold.n_valid), *(fmt(getattr(fold, name)) for name in SCALAR_METRICS)]
        for fold in cv.fold_metrics
    ]
    rows.append(
        ["mean ± std", str(len(cv.y)), *(f"{fmt(cv.mean[n])} ± {fmt(cv.std[n])}" for n in SCALAR_METRICS)]
    )
    folds = rows_table(["fold", "frames", *(METRIC_TITLES[n] for n in SCALAR_METRICS)], rows)
    per_class = rows_table(
        ["label", "frames", "precision", "recall", "F1"],
        [
            [
                label,
                str(int((cv.y == k).sum())),
                *(
                    f"{fmt(cv.per_class[label][m]['mean'])} ± {fmt(cv.per_class[label][m]['std'])}"
                    for m in ("precision", "recall", "f1")
                ),
            ]
            for k, label in enumerate(cv.labels)
        ],
    )
    return folds + per_class


def rows_table(header: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th class='{'l' if i == 0 else ''}'>{e(str(h))}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f"<td class='{'l' if i == 0 else ''}'>{e(str(v))}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def kv_table(data: dict[str, Any] | None) -> str:
    if not data:
        return "<p>—</p>"
    return rows_table(["", "value"], [[key, fmt(value)] for key, value in data.items()])


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# --- label sets and heads ----------------------------------------------------------------------


def heads_html(heads: dict[str, Any], reason: str) -> str:
    names = head_metric_names(heads)
    rows = [[h, *(mean_std(c.mean[n], c.std[n]) for n in names)] for h, c in heads.items()]
    return (
        "<h2>Classifier heads (same folds)</h2>"
        + rows_table(["head", *names], rows)
        + f"<p>{html.escape(reason)}</p><img class='plot' src='{HEADS_PNG}' alt='heads'>"
    )


def render_multilabel_html(
    cv: MultiLabelCV, report: dict[str, Any], plots: list[str], heads: dict[str, Any]
) -> str:
    """The multi-label report page; ``report`` is what report.json holds."""
    e = html.escape
    folds = rows_table(
        ["fold", "frames", *(SET_TITLES[n] for n in SET_METRICS)],
        [[f["fold"], f["n_valid"], *(fmt(f[n]) for n in SET_METRICS)] for f in cv.fold_metrics]
        + [["mean ± std", len(cv.y), *(mean_std(cv.mean[n], cv.std[n]) for n in SET_METRICS)]],
    )
    per_label = rows_table(
        ["label", "frames", "precision", "recall", "F1", "ROC-AUC", "threshold"],
        [
            [
                label,
                int(cv.y[:, k].sum()),
                *(
                    mean_std(cv.per_label[label][n]["mean"], cv.per_label[label][n]["std"])
                    for n in PER_LABEL_METRICS
                ),
                f"{cv.thresholds[label]:.3f}",
            ]
            for k, label in enumerate(cv.labels)
        ],
    )
    heads_section = heads_html(heads, report["head_choice"]) if len(heads) > 1 else ""
    guard = report["int8_guard"]
    images = "".join(f"<img class='plot' src='{e(name)}' alt='{e(name)}'>" for name in plots)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>camsort multi-label report</title>
<style>{STYLE}</style></head><body>
<h1>camsort multi-label model</h1>
<p>labels: {e(", ".join(cv.labels))}; {len(cv.y)} frames; head: {e(cv.head)}</p>
<p>{e(cv.fold_strategy)}. Per-fold precision/recall/F1 use thresholds chosen on the other folds'
out-of-fold predictions; the shipped thresholds maximise each label's F1 on all out-of-fold predictions.</p>
<h2>Set metrics per fold</h2>{folds}
<h2>Per label, mean ± std over folds</h2>{per_label}
{heads_section}
<h2>Plots</h2>{images}
<h2>Training set</h2>{kv_table(report["dataset"].get("per_label_set"))}{kv_table(report["near_duplicates"])}
<h2>int8 guard</h2>{kv_table(guard) if guard else "<p>not run (fp32 requested)</p>"}
<h2>Parity</h2>{kv_table({k: fmt(v) for k, v in (report["parity"] or {}).items()})}
</body></html>
"""


def fine_tuning_html(frozen: MultiLabelCV, tuned: MultiLabelCV, decision: str) -> str:
    """Label sets: frozen and fine-tuned side by side (same frames, same folds), a report section."""
    runs = {"frozen": frozen, "fine-tuned (cross-fitted)": tuned}
    names = head_metric_names(runs)
    side_by_side = rows_table(
        ["run", *names], [[r, *(mean_std(c.mean[n], c.std[n]) for n in names)] for r, c in runs.items()]
    )
    per_label = rows_table(
        ["label", *(f"F1 {r}" for r in runs), *(f"ROC-AUC {r}" for r in runs)],
        [
            [
                label,
                *(
                    mean_std(c.per_label[label]["f1"]["mean"], c.per_label[label]["f1"]["std"])
                    for c in runs.values()
                ),
                *(
                    mean_std(c.per_label[label]["roc_auc"]["mean"], c.per_label[label]["roc_auc"]["std"])
                    for c in runs.values()
                ),
            ]
            for label in tuned.labels
        ],
    )
    return (
        "<h2>Frozen vs fine-tuned, the same frames and folds</h2>"
        f"<p>{html.escape(decision)}</p>{side_by_side}{per_label}"
        "<img class='plot' src='roc-frozen.png' alt='ROC, frozen'>"
    )
