"""`camsort demo`: the whole system on this machine, then its answers.

``run_demo`` (what ``make demo`` runs):

1. a model: ``--model DIR``, or the cached demo model, or one trained now from synthetic
   frames (:mod:`infra.demo.model`; ``--weights none`` by default: the ResNet50 backbone is
   randomly initialised because ImageNet weights cannot be downloaded offline; the screen says so);
2. a moto server on 127.0.0.1 (or ``--endpoint-url``), the deployed topology on it
   (:mod:`infra.local.stack`), the model uploaded under ``models/``;
3. the worker in a thread, calling the very same Lambda handler (:mod:`infra.local.worker`);
4. the camera simulator (:mod:`infra.demo.simulator`): cameras x frames, a few bad objects and one
   duplicated notification, with a live view (:mod:`infra.demo.live_view`);
5. an honest account (:mod:`infra.demo.accounting`): every uploaded object must end with exactly one
   result or one dead-letter entry; ``lost`` counts those with neither, and the exit code says so;
6. a results query for one camera, through the same function as ``camsort results``
   (:mod:`infra.ops.results_query`);
7. the tampered cameras (:mod:`infra.demo.tamper`): mid-run one camera is covered and another
   turned; the time the function took to tell, and its false alarms, against the ground truth;
8. with ``--shadow``, a second model scored beside the live one and the comparison
   (:mod:`infra.demo.shadow`, `camsort compare`);
9. the regions camera (:mod:`infra.demo.regions`, ``--no-regions`` leaves it out): a car park
   whose bays and gate are answered by two named models trained on the default's backbone
   (in a child process while the cameras run: :mod:`infra.demo.region_models`), scored per
   region against the ground truth;
10. the unfamiliar frames uploaded among the cameras' (:mod:`infra.demo.unfamiliar`): how many came
    back ``unfamiliar``, and the false alarms on the cameras' frames.

Steps 2-10 run as ``STAGES``, a list of (name, function of ``DemoRun``) in order: a new part of
the demo is one more entry, and the run ends by printing every stage's seconds.

``--keep-running`` leaves the moto server up and writes a state file (endpoint, stage) under
the cache dir (:mod:`infra.local.running`); the operator commands read it when given no target,
``camsort demo --stop`` stops that server, and the demo ends by printing the tour
(:mod:`infra.demo.tour`): the commands to try next.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from functions import env
from functions.frames.manifest import load_verified, read_manifest
from infra.demo.camera_run import CameraRun, run_cameras, settle
from infra.demo.model import ensure_demo_model, explain_weights
from infra.demo.region_models import BackgroundTraining, RegionsSettings, start_region_models
from infra.demo.regions import run_regions_camera
from infra.demo.settings import DemoSettings
from infra.demo.shadow import report_shadow, shadow_environment
from infra.demo.simulator import SimulationManifest
from infra.demo.story_report import story_report
from infra.demo.summary import REPORT_FILENAME, DemoOutcome, outcome_report, summary_table
from infra.demo.tamper import HEALTH_FILENAME, health_report
from infra.demo.tour import print_tour
from infra.demo.unfamiliar import report_unfamiliar
from infra.deploy.topology import MAX_RECEIVE_COUNT, StackNames
from infra.local import iam as local_iam
from infra.local.function_env import function_environment
from infra.local.moto_server import MotoServer
from infra.local.running import refuse_second_demo, write_state
from infra.local.stack import LocalStack, create_local_stack, upload_model
from infra.ops.results_query import ResultsQuery, ResultsTarget, iso_utc, show_results


@dataclass
class DemoRun:
    """What the demo's stages share: each stage reads what the earlier ones left here."""

    settings: DemoSettings
    console: Console
    model_dir: Path
    endpoint_url: str = ""
    stack: LocalStack | None = None
    environment: dict[str, str] = field(default_factory=dict)
    cameras: CameraRun | None = None
    region_training: BackgroundTraining | None = None  # bay and gate, trained while the cameras run
    outcome: DemoOutcome | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # stage name -> wall seconds


DemoStage = Callable[[DemoRun], None]


def _deploy(demo: DemoRun) -> None:
    demo.stack, demo.environment = deploy(demo.settings, demo.model_dir, demo.endpoint_url, demo.console)


def _region_models(demo: DemoRun) -> None:
    # Started before the cameras: their real-time pace leaves the CPU to the training.
    if demo.settings.regions:
        demo.region_training = start_region_models(
            RegionsSettings(seed=demo.settings.seed), demo.model_dir, Path(demo.settings.cache_dir),
            demo.settings.demo_dir / "region-models.log",
        )  # fmt: skip


def _cameras(demo: DemoRun) -> None:
    assert demo.stack is not None
    demo.cameras = run_cameras(demo.settings, demo.stack, demo.environment, demo.console)
    demo.outcome = settle(demo.stack, demo.cameras)


def _report(demo: DemoRun) -> None:
    assert demo.stack is not None and demo.outcome is not None and demo.cameras is not None
    report(demo.settings, demo.stack, demo.outcome, demo.cameras.simulated, demo.console)


def _unfamiliar(demo: DemoRun) -> None:
    if demo.settings.unfamiliar_per_kind:
        assert demo.stack is not None and demo.cameras is not None
        report_unfamiliar(demo.stack, demo.cameras.simulated, read_manifest(demo.model_dir), demo.console)


def _shadow(demo: DemoRun) -> None:
    if demo.settings.shadow:
        assert demo.stack is not None and demo.cameras is not None
        report_shadow(demo.settings, demo.stack, demo.cameras.started_at, demo.console)


def _archive(demo: DemoRun) -> None:
    assert demo.stack is not None and demo.outcome is not None
    query_the_archive(demo.stack, demo.outcome, demo.console)


def _regions(demo: DemoRun) -> None:
    # last: the account and the archive above are the cameras' run alone
    if demo.settings.regions:
        assert demo.stack is not None
        run_regions_camera(
            demo.settings, demo.stack, demo.environment, demo.model_dir, demo.console, demo.region_training
        )


# The demo after its model, in order; a stage added to the demo is one entry here (it reads and
# writes DemoRun). The first run must stay within 4 minutes and 4 GB for the whole process tree
# (`python -m bench.demo_memory --whole -- camsort demo`): the run prints each stage's seconds.
STAGES: list[tuple[str, DemoStage]] = [
    ("deploy", _deploy),
    ("region models", _region_models),
    ("cameras", _cameras),
    ("report", _report),
    ("unfamiliar", _unfamiliar),
    ("shadow", _shadow),
    ("archive", _archive),
    ("regions", _regions),
]


def run_demo(settings: DemoSettings, console: Console | None = None) -> DemoOutcome:
    console = console or Console()
    settings.demo_dir.mkdir(parents=True, exist_ok=True)
    if settings.keep_running:  # before training or starting anything
        refuse_second_demo(settings.cache_dir, console)
    began = time.perf_counter()
    demo = DemoRun(settings, console, prepare_model(settings, console))
    demo.seconds["model"] = time.perf_counter() - began
    with demo_endpoint(settings, console) as endpoint_url:
        demo.endpoint_url = endpoint_url
        try:
            for name, stage in STAGES:
                began = time.perf_counter()
                stage(demo)
                demo.seconds[name] = time.perf_counter() - began
        finally:
            if demo.region_training is not None:
                demo.region_training.stop()
        console.print(
            "[dim]demo stages (s): "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in demo.seconds.items())
            + "[/]"
        )
        assert demo.outcome is not None
        return demo.outcome


def query_the_archive(stack: LocalStack, outcome: DemoOutcome, console: Console) -> None:
    """The last step: the run's results exported to Parquet (the table's stream, as exportResults
    does on AWS) and counted with the SQL `camsort stats` runs on Athena, here on DuckDB."""
    from infra.ops.archive_jobs import export_results_locally
    from infra.ops.stats import print_stats, stats_command

    exported = export_results_locally(
        stack.endpoint_url, stack.names.bucket, stack.names.table, region=stack.region
    )
    console.print(
        f"\nresults archive: {exported['rows']} results exported to Parquet in {len(exported['files'])} file(s) "
        f"under s3://{stack.names.bucket}/archive/results/"
    )
    since, until = iso_utc(outcome.started_at), iso_utc(outcome.finished_at + timedelta(seconds=1))
    command = (
        f"camsort stats --by camera,label --since {since} --until {until} --endpoint-url {stack.endpoint_url}"
    )
    console.print(f"[bold]{command}[/]")
    table = stats_command(
        "camera,label",
        outcome.started_at,
        outcome.finished_at + timedelta(seconds=1),
        engine="duckdb",
        bucket=stack.names.bucket,
        endpoint_url=stack.endpoint_url,
        region=stack.region,
        database=None,
        output_location=None,
    )
    print_stats(table, console, "frames by camera and label")


def prepare_model(settings: DemoSettings, console: Console) -> Path:
    """The model the demo deploys (given, cached or trained now), verified, described on screen."""
    model_dir = Path(settings.model_dir) if settings.model_dir else ensure_demo_model(settings, console)
    load_verified(model_dir)
    manifest = read_manifest(model_dir)
    warning = explain_weights(manifest.weights, manifest.fine_tuning)
    if warning:
        console.print(Panel(warning, title="about this model", border_style="yellow"))
    console.print(
        f"Model {model_dir} (labels {', '.join(manifest.labels)}; {manifest.precision}; "
        f"sha256 {manifest.model_sha256[:12]})"
    )
    return model_dir


@contextmanager
def demo_endpoint(settings: DemoSettings, console: Console) -> Iterator[str]:
    """The given endpoint, or a moto server started for the demo and stopped after it.

    With ``--keep-running``, a demo that completed records its server (left up) and prints the tour.
    """
    if settings.endpoint_url:
        yield settings.endpoint_url
        if settings.keep_running:
            _keep(settings, settings.endpoint_url, None, console)
        return
    server = MotoServer(log_path=settings.demo_dir / "moto.log").start()
    keep_server = False
    try:
        yield server.endpoint_url
        if settings.keep_running:
            _keep(settings, server.endpoint_url, server.pid, console)
            keep_server = True
    finally:
        if not keep_server:
            server.stop()


def _keep(settings: DemoSettings, endpoint_url: str, pid: int | None, console: Console) -> None:
    write_state(settings.demo_dir, endpoint_url, settings.stage, pid)
    print_tour(console, endpoint_url=endpoint_url, stage=settings.stage, shadow=settings.shadow)


def deploy(
    settings: DemoSettings, model_dir: Path, endpoint_url: str, console: Console
) -> tuple[LocalStack, dict[str, str]]:
    """The topology on the endpoint, the model uploaded; returns the stack and the function's environment."""
    names = StackNames.for_stage(settings.stage)
    stack = create_local_stack(endpoint_url, names, function_timeout_s=settings.function_timeout_s)
    manifest = read_manifest(model_dir)
    model_uri = upload_model(stack, model_dir, version=manifest.model_sha256[:12])
    environment = function_environment(
        stack,
        model_uri,
        extra={
            env.MAX_BYTES: str(settings.max_bytes),
            env.MODEL_CACHE_DIR: str(settings.demo_dir / "function-model-cache"),
        },
    )
    if settings.shadow:
        pin = (manifest.model_version, manifest.model_sha256)
        environment |= shadow_environment(settings, stack, model_uri, pin, datetime.now(UTC), console)
    console.print(
        f"Local stack on {endpoint_url}: bucket {names.bucket}, queue {names.queue} (+DLQ, maxReceiveCount "
        f"{MAX_RECEIVE_COUNT}, visibility {stack.visibility_timeout_s}s), table {names.table}. "
        f"Function logs: {settings.demo_dir / 'function.log'}"
    )
    console.print(
        f"{local_iam.describe(stack, model_uri)}; model pinned to sha256 {environment.get(env.MODEL_SHA256)}"
    )
    return stack, environment


def report(
    settings: DemoSettings,
    stack: LocalStack,
    outcome: DemoOutcome,
    simulated: SimulationManifest,
    console: Console,
) -> None:
    """The summary table (and report.json), the lost objects by key, then one camera's results
    as `camsort results` shows them."""
    console.print(summary_table(outcome, simulated))
    if outcome.account.audit is not None:  # the same accounting as `camsort audit`
        from infra.ops.audit_report import audit_table

        console.print(audit_table(outcome.account.audit, title="camsort audit"))
    report_path = settings.demo_dir / REPORT_FILENAME
    report_path.write_text(json.dumps(outcome_report(outcome, simulated), indent=2, sort_keys=True) + "\n")
    console.print(f"The same figures as JSON: {report_path}")
    if outcome.account.lost:
        console.print(
            f"[bold red]LOST {len(outcome.account.lost)} object(s):[/] " + ", ".join(outcome.account.lost)
        )
    console.print(
        f"\n[bold]camsort results --camera {settings.results_camera} --since {iso_utc(outcome.started_at)} "
        f"--until {iso_utc(outcome.finished_at)} --limit {settings.results_limit}[/]",
        soft_wrap=True,  # one line however narrow the terminal: it is a command to copy
    )
    show_results(
        ResultsQuery(
            camera=settings.results_camera,
            since=outcome.started_at,
            until=outcome.finished_at,
            limit=settings.results_limit,
        ),
        ResultsTarget(endpoint_url=stack.endpoint_url, table=stack.names.table, region=stack.region),
        console=console,
    )
    story_report(stack, simulated, console, camera=settings.results_camera)
    if settings.tampers:
        figures = health_report(stack, simulated, console)
        (settings.demo_dir / HEALTH_FILENAME).write_text(json.dumps(figures.as_dict(), indent=2) + "\n")
