"""What decoding a crafted frame costs in memory: ``python -m bench.decode_memory [--quick]``.

Every PNG colour type and bit depth (bench.crafted), each a 40 MP frame inside the pixel
limit, is decoded by the function's own loader in a fresh child process:

* single: one file, ``load_image`` with the decode budget the function has (its estimate is
  reported beside the peak, so the estimate is checked against what the process really used);
* batch: ten copies at once on a pool of the function's I/O width, sharing ONE budget sized as
  the function sizes it from the deployed memory (serverless.yml's 1,769 MB).

The figure is the growth of the child's peak RSS (VmHWM) over its peak before the decode, so
imports and the file bytes are not counted. A frame refused before decoding
(``too_much_decode_memory``) costs no pixels: its row says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.config import BenchError
from bench.crafted import PngCase, crafted_png, worst_cases

WIDTH, HEIGHT = 8000, 5000  # 40 MP: the default pixel limit
QUICK = (4000, 2500)
BATCH = 10
DEPLOYED_MEMORY_MB = 1769  # serverless.yml's memorySize
# The function's container after its init phase, measured on the demo's fp32 ResNet50 model
# (model.onnx 90 MiB, 1 thread): RSS 315 MiB after ModelSession.open (incl. its warm-up).
# The batch's budget is sized from these as functions.frames.decode_budget sizes it in the function.
CONTAINER_RESIDENT_MIB = 315
MODEL_FILE_MIB = 90
MARKERS = ("<!-- decode-memory:start -->", "<!-- decode-memory:end -->")


def _hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def batch_budget_bytes() -> int:
    from functions.env import DEFAULT_MAX_DECODE_MIB
    from functions.frames.decode_budget import MIB, budget_bytes

    return budget_bytes(
        memory_mb=DEPLOYED_MEMORY_MB,
        resident_bytes=CONTAINER_RESIDENT_MIB * MIB,
        model_bytes=MODEL_FILE_MIB * MIB,
        per_frame_bytes=DEFAULT_MAX_DECODE_MIB * MIB,
    )


def child(case: PngCase, copies: int, width: int, height: int, lifted: bool) -> dict[str, Any]:
    """In a fresh process: decode ``copies`` of the case at once; peak RSS growth and outcomes.

    ``lifted``: no per-frame limit (what the frame would cost if decoded), else the defaults;
    a batch shares one budget sized as the function sizes its own.
    """
    from functions.errors import BadInputError
    from functions.frames.decode_budget import MIB, DecodeBudget
    from functions.frames.decode_cost import decode_cost
    from functions.frames.image_loader import IMAGE_SIZE, frame_header, load_image

    data = crafted_png(case, width, height)
    estimate = decode_cost(frame_header(data, source=case.name, max_pixels=10**9), IMAGE_SIZE)
    limit = {"max_decode_bytes": 10**12} if lifted else {}
    budget = DecodeBudget(batch_budget_bytes()) if copies > 1 else None
    outcomes: list[str] = []

    def one(index: int) -> str:
        try:
            load_image(data, source=f"{case.name} #{index}", budget=budget, **limit)
        except BadInputError as exc:
            return exc.reason
        return "ok"

    before = _hwm_kib()
    if copies == 1:
        outcomes = [one(0)]
    else:
        with ThreadPoolExecutor(max_workers=copies) as pool:
            outcomes = list(pool.map(one, range(copies)))
    return {
        "added_peak_mib": round((_hwm_kib() - before) / 1024, 1),
        "estimate_mib": round(estimate / MIB, 1),
        "budget_mib": round(budget.total_bytes / MIB, 1) if budget else None,
        "outcomes": outcomes,
        "file_bytes": len(data),
    }


def measure(case: PngCase, copies: int, size: tuple[int, int], *, lifted: bool = False) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter (a clean peak), return its figures."""
    spec = json.dumps({"colour_type": case.colour_type, "bit_depth": case.bit_depth, "lifted": lifted,
                       "transparency": case.transparency, "copies": copies, "width": size[0], "height": size[1]})  # fmt: skip
    completed = subprocess.run(
        [sys.executable, "-m", "bench.decode_memory", "--child", spec],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(DEPLOYED_MEMORY_MB)},
    )
    if completed.returncode != 0:
        # A crash of the measuring child is the bench's defect, not a figure: stop the stage.
        raise BenchError(
            f"bench.decode_memory: measuring {case.name} (copies {copies}) failed with exit "
            f"{completed.returncode}; its error output ends:\n{completed.stderr[-1200:]}"
        )
    return {
        "case": case.name,
        "copies": copies,
        "lifted": lifted,
        **json.loads(completed.stdout.strip().splitlines()[-1]),
    }


def decode_memory_stage(*, quick: bool = False, batches: bool = True) -> dict[str, Any]:
    """The bench stage: every case alone, then (``batches``) every case ten at a time."""
    cases = worst_cases()
    size = QUICK if quick else (WIDTH, HEIGHT)
    lifted = [measure(case, 1, size, lifted=True) for case in cases]
    singles = [measure(case, 1, size) for case in cases]
    batch_rows = [measure(case, BATCH, size) for case in cases] if batches else []
    measured = singles + batch_rows
    worst_single = max(
        (r for r in measured if r["copies"] == 1), key=lambda r: r["added_peak_mib"], default=None
    )
    worst_batch = max(
        (r for r in measured if r["copies"] > 1), key=lambda r: r["added_peak_mib"], default=None
    )
    return {
        "width": size[0],
        "height": size[1],
        "deployed_memory_mb": DEPLOYED_MEMORY_MB,
        "lifted": lifted,
        "single": singles,
        "batch": batch_rows,
        "worst_single": worst_single,
        "worst_batch": worst_batch,
    }


def decode_memory_markdown(figures: dict[str, Any]) -> str:
    """The stage as a results.md section, between its markers."""
    batches = {row["case"]: row for row in figures["batch"]}
    lifted = {row["case"]: row for row in figures["lifted"]}
    lines = [
        MARKERS[0],
        "",
        "## Decode memory: crafted PNGs",
        "",
        f"Every PNG colour type and bit depth at {figures['width']}x{figures['height']} (inside the pixel "
        f"limit), all-zero pixels, decoded by `load_image` in a fresh process; batch: {BATCH} copies at once "
        f"on the function's I/O pool under one decode budget sized from {figures['deployed_memory_mb']} MB "
        f"({_budget(figures)} MiB). Peak RSS growth over the process's peak before the decode. "
        "*Estimate*: `decode_cost` from the header; *limit lifted*: decoded whatever it costs, the "
        "estimate's check; *alone* / *batch*: with the default per-frame limit.",
        "",
        "| case | file bytes | estimate MiB | limit lifted: peak MiB | alone: peak MiB | alone | "
        "batch of 10: peak MiB | batch |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for row in figures["single"]:
        batch, free = batches.get(row["case"], {}), lifted.get(row["case"], {})
        lines.append(
            f"| {row['case']} | {row.get('file_bytes', '')} | {row.get('estimate_mib', '')} | "
            f"{free.get('added_peak_mib', '')} | {row['added_peak_mib']} | "
            f"{_outcomes(row)} | {batch.get('added_peak_mib', '')} | {_outcomes(batch)} |"
        )
    for label, key in (("worst single file", "worst_single"), ("worst batch of 10", "worst_batch")):
        if figures.get(key):
            lines.append(
                f"\n**{label}:** {figures[key]['case']}, +{figures[key]['added_peak_mib']} MiB peak RSS."
            )
    lines += ["", MARKERS[1], ""]
    return "\n".join(lines)


def _budget(figures: dict[str, Any]) -> str:
    budgets = {row.get("budget_mib") for row in figures["batch"]} - {None}
    return ", ".join(str(b) for b in sorted(budgets)) or "-"


def _outcomes(row: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for outcome in row.get("outcomes", []):
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))


def write_section(path: Path, section: str, markers: tuple[str, str] = MARKERS) -> None:
    """Replace the section between the markers in ``path`` (append it when absent)."""
    text = path.read_text() if path.is_file() else ""
    start, end = text.find(markers[0]), text.find(markers[1])
    if start != -1 and end != -1:
        text = text[:start] + section.rstrip("\n") + text[end + len(markers[1]) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.decode_memory", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="4000x2500 frames instead of 8000x5000")
    parser.add_argument("--no-batches", action="store_true", help="single files only")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        case = PngCase(spec["colour_type"], spec["bit_depth"], spec["transparency"])
        print(json.dumps(child(case, spec["copies"], spec["width"], spec["height"], spec["lifted"])))
        return 0
    figures = run_decode_memory(args.out_dir, quick=args.quick, batches=not args.no_batches)
    print(decode_memory_markdown(figures))
    return 0


def run_decode_memory(out_dir: Path, *, quick: bool = False, batches: bool = True) -> dict[str, Any]:
    """The stage as `make bench` runs it: decode-memory.json and the results.md section."""
    figures = decode_memory_stage(quick=quick, batches=batches)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "decode-memory.json").write_text(json.dumps(figures, indent=2) + "\n")
    write_section(out_dir / "results.md", decode_memory_markdown(figures))
    return figures


if __name__ == "__main__":
    sys.exit(main())
