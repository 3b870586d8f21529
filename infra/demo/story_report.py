"""The demo's closing story: events, and how they compare with the simulator's ground truth.

Reads what the run left in the stack (event items in the state table, per-frame results in
the results table), scores it with :func:`infra.demo.story.compare`, and replays the same per-frame
results through a few candidate rules: the measurement the default rule is chosen from.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from functions.state.smoothing import Frame, Rule, SmoothingConfig
from infra.demo.accounting import scan_results
from infra.demo.simulator import SimulationManifest
from infra.demo.story import Comparison, compare, comparison_table, replay_events
from infra.local.stack import LocalStack
from infra.ops.camera_views import StateSource, camera_events, events_table

# Rules compared on every run's per-frame results (the first is the built-in default).
CANDIDATE_RULES = {
    "default: 2 in a row, unknown abstains": Rule(),
    "every frame (no smoothing)": Rule(mode="k_of_n", k=1, n=1, enter=0.0, exit=0.0, abstain=()),
    "2 in a row": Rule(mode="consecutive", k=2, abstain=()),
    "3 in a row (Frigate)": Rule(mode="consecutive", k=3, abstain=()),
    "2 of 3": Rule(mode="k_of_n", k=2, n=3, abstain=()),
    "3 of 5": Rule(mode="k_of_n", k=3, n=5, abstain=()),
    "4 of 7": Rule(mode="k_of_n", k=4, n=7, abstain=()),
    "3 of 5 in 2.5 s": Rule(mode="k_of_n", k=3, window_s=2.5, abstain=()),
    "3 of 5, unknown abstains": Rule(mode="k_of_n", k=3, n=5),
    "2 of 3, unknown abstains": Rule(mode="k_of_n", k=2, n=3),
    "2 in a row, no hysteresis (0.5 / 0.5)": Rule(enter=0.5, exit=0.5),
}


def story_report(
    stack: LocalStack,
    simulated: SimulationManifest,
    console: Console,
    *,
    camera: str,
    smoothing: SmoothingConfig | None = None,
) -> Comparison:
    """Print one camera's events, the comparison with ground truth, and the rule sweep."""
    source = StateSource(stack.endpoint_url, stack.names.state_table, stack.names.table, stack.region)
    cameras = sorted({obj.camera_id for obj in simulated.frames})
    events = [event for camera_id in cameras for event in camera_events(source, camera_id)]
    truth = simulated.truth_intervals()
    rendered = {obj.key: obj.label for obj in simulated.frames}
    ok = [r for r in scan_results(stack) if r.get("status") == "ok" and r.get("key") in rendered]
    frames = [(r["camera_id"], r["captured_at"], rendered[r["key"]], r["label"]) for r in ok]

    # The command that shows the same table (every event of the camera): one line, to copy.
    console.print(f"\n[bold]camsort events --camera {camera}[/]", soft_wrap=True)
    console.print(events_table([e for e in events if e["camera_id"] == camera], f"events of {camera}"))
    result = compare(truth, events, frames)
    console.print(comparison_table(result, "the events (state table) against the simulator's ground truth"))
    console.print(rule_sweep_table(ok, rendered, truth, frames, smoothing or SmoothingConfig()))
    return result


def rule_sweep_table(
    ok: list[dict], rendered: dict, truth: list, frames: list, smoothing: SmoothingConfig
) -> Table:
    """The same per-frame results replayed (in processing order) through each candidate rule."""
    table = Table(title="the same frames through other rules (offline replay, processing order)")
    for name in ("rule", "precision", "recall", "start err. median (s)", "state accuracy"):
        table.add_column(name, justify="left" if name == "rule" else "right")
    by_camera: dict[str, list[Frame]] = {}
    for r in sorted(ok, key=lambda r: (r.get("processed_at", ""), r["captured_at"])):
        by_camera.setdefault(r["camera_id"], []).append(
            Frame(
                r["captured_at"],
                f"{r['object_id']}@{r['object_version']}",
                r["label"],
                float(r["confidence"]),
            )
        )
    import statistics

    for name, rule in CANDIDATE_RULES.items():
        events = [e for camera, fs in by_camera.items() for e in replay_events(camera, fs, rule)]
        result = compare(truth, events, frames, ignore=rule.ignore)
        errors = result.start_errors_s
        table.add_row(
            name,
            f"{result.precision:.1%}",
            f"{result.recall:.1%}",
            f"{statistics.median(errors):+.2f}" if errors else "-",
            f"{result.state_correct / result.frames:.1%}" if result.frames else "-",
        )
    return table
