"""`camsort demo --shadow`: a second model scored in shadow on every invocation, then the comparison.

The candidate is ``--candidate DIR``, or a second demo model trained like the first with the
next seed (other synthetic frames, other folds: a genuinely different model, cached once
trained). It is uploaded beside the live model and written into the stage's deploy file in the
demo's state directory (``<cache>/demo/deploy/<stage>.json``, as `camsort candidate` would), and
the worker's environment is built from that file, so after ``--keep-running`` the commands
`camsort compare` and `camsort promote` work on the same stage.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

from rich.console import Console

from infra.demo.model import ensure_demo_model
from infra.demo.settings import DemoSettings
from infra.local.stack import LocalStack
from infra.ops.compare import compare_command
from infra.ops.promote import DeployConfig, ModelPin, Stage, set_candidate
from infra.ops.review import AwsTarget

# Every invocation scored: the demo is short and the comparison should cover all its frames.
DEMO_SAMPLE_RATE = 1.0


def demo_stage(settings: DemoSettings, stack: LocalStack) -> Stage:
    target = AwsTarget(stack.endpoint_url, stack.names.table, stack.names.review_table, stack.region)
    return Stage(settings.stage, settings.demo_dir / "deploy", target, local=True)


def shadow_environment(
    settings: DemoSettings,
    stack: LocalStack,
    live_uri: str,
    live_pin: tuple[str, str],
    now: datetime,
    console: Console,
) -> dict[str, str]:
    """Prepare and upload the candidate, write the deploy file; the function's model variables."""
    candidate_dir = (
        Path(settings.candidate_dir)
        if settings.candidate_dir
        else ensure_demo_model(dataclasses.replace(settings, seed=settings.seed + 1), console)
    )
    stage = demo_stage(settings, stack)
    version, sha256 = live_pin
    stage.write(DeployConfig(live=ModelPin(version, live_uri, sha256)))
    config = set_candidate(
        stage, candidate_dir, version=None, sample_rate=DEMO_SAMPLE_RATE, live_uri=None, now=now
    )
    assert config.candidate is not None
    console.print(
        f"Shadow candidate {config.candidate.version} ({config.candidate.uri}, sha256 "
        f"{config.candidate.sha256[:12]}) scores every invocation; deploy file {stage.path}"
    )
    return config.function_environment()


def report_shadow(settings: DemoSettings, stack: LocalStack, since: datetime, console: Console) -> None:
    """The comparison, as `camsort compare` prints it, plus its HTML page in the demo directory."""
    console.print(
        "\n[bold]camsort compare --since " + since.strftime("%Y-%m-%dT%H:%M:%SZ") + "[/]", soft_wrap=True
    )
    html_path = settings.demo_dir / "compare.html"
    compare_command(
        demo_stage(settings, stack).target,
        since=since,
        camera=None,
        candidate_version=None,
        worst=10,
        as_json=False,
        html_path=html_path,
        thumbnails="download",
        console=console,
    )
