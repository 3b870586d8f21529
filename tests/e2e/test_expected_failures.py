"""Every command that talks to AWS, pointed at a wrong stage or at no server: one sentence, exit 1.

The real CLI in a subprocess, as a user meets it. Four ways to be wrong:

* a stage that was never created, on a moto server that is up;
* an endpoint where nothing answers;
* no options, and a state file left by a demo whose server is gone;
* no options, and no demo ever run.

Each must end with exit code 1 (2 for a usage error) and a message, never a traceback.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.local.moto_server import free_port
from infra.local.running import write_state
from tests.fixtures.cli import TRACEBACK, camsort

pytestmark = pytest.mark.e2e

STAGE = "never-created"
BUCKET = f"camsort-frames-{STAGE}"
# {at}: where the command looks (--endpoint-url ... --table / --stage ..., or nothing).
# {model}: a real model directory; {out}: a scratch directory.
FOLLOW_THE_DEMO = [
    "results --camera cam-01 --last 10m {at}",
    "cameras {at}",
    "events --camera cam-01 --last 1h {at}",
    "dashboard --out {out}/dashboard.html {at}",
    "review stats {at}",
    "review export {out}/review {at}",
    "compare --since 1h {at}",
]
STAGED = [
    "audit --last 1h {staged}",
    "promote {staged}",
    "rollback {staged}",
    "candidate {model} {staged}",
]
# A bucket that does not exist is no error for camera credentials (a policy may name any
# bucket): these are wrong only when no server answers.
CAMERAS = [
    f"camera add cam-09 --bucket {BUCKET} {{endpoint}}",
    f"camera list --bucket {BUCKET} {{endpoint}}",
    f"camera remove cam-09 --bucket {BUCKET} {{endpoint}}",
]
ENDPOINT_ONLY = [
    f"upload-model {{model}} --bucket {BUCKET} {{endpoint}}",
    f"backfill s3://{BUCKET}/frames/ --function-model-uri s3://{BUCKET}/models/v1/ {{endpoint}}",
    f"train s3://{BUCKET}/data/ --out {{out}}/model --weights none {{endpoint}}",
]


def _run_all(commands: list[str], tmp_path) -> list[tuple[str, int, str]]:
    def one(command: str) -> tuple[str, int, str]:
        done = camsort(command, cache_dir=tmp_path / "cache", cwd=tmp_path, timeout_s=300)
        return command, done.returncode, done.stdout

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, commands))


def _assert_one_sentence_each(outcomes: list[tuple[str, int, str]]) -> None:
    problems = []
    for command, code, output in outcomes:
        if code not in (1, 2) or TRACEBACK in output or "Error: " not in output:
            problems.append(f"camsort {command}: exit {code}\n{output[-1500:]}")
    assert not problems, "\n\n".join(problems)


def _commands(at: str, staged: str, endpoint: str | None, tmp_path, model, cameras=False) -> list[str]:
    templates = FOLLOW_THE_DEMO + STAGED + (ENDPOINT_ONLY if endpoint else []) + (CAMERAS if cameras else [])
    values = {"at": at, "staged": staged, "endpoint": endpoint or "", "model": model, "out": tmp_path}
    return [template.format(**values) for template in templates]


def _run_against(
    url: str, stage: str, tmp_path, model, *, cameras: bool = False
) -> list[tuple[str, int, str]]:
    """Every command pointed at ``url`` and ``stage``: by table, by stage, or by endpoint alone."""
    table = f" --table camsort-results-{stage}" if stage != "local" else ""
    commands = _commands(
        at=f"--endpoint-url {url}{table}",
        staged=f"--endpoint-url {url} --stage {stage}",
        endpoint=f"--endpoint-url {url}",
        tmp_path=tmp_path,
        model=model,
        cameras=cameras,
    )
    return _run_all(commands, tmp_path)


def test_a_stage_that_was_never_created(moto_server, tiny_model_dir, tmp_path):
    outcomes = _run_against(moto_server.endpoint_url, STAGE, tmp_path, tiny_model_dir)
    _assert_one_sentence_each(outcomes)
    said = {command.split(" --")[0]: output for command, _, output in outcomes}
    # The missing resource is named, whichever call met it first.
    assert f"camsort-results-{STAGE}" in said["results"]
    assert f"camsort-frames-{STAGE}" in said["audit"]
    assert f"camsort-state-{STAGE}" in said["cameras"]


def test_an_endpoint_where_nothing_answers(tiny_model_dir, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    outcomes = _run_against(url, "local", tmp_path, tiny_model_dir, cameras=True)
    _assert_one_sentence_each(outcomes)
    for command, _, output in outcomes:
        # train reads S3 with the environment's credentials (none here), which it says first.
        if not command.startswith(("candidate", "promote", "rollback", "train")):
            assert f"nothing answers at {url}" in output, f"camsort {command}:\n{output}"


def test_a_demo_whose_server_is_gone_and_no_demo_at_all(tiny_model_dir, tmp_path):
    never = _run_all(_commands("", "", None, tmp_path, tiny_model_dir), tmp_path)
    _assert_one_sentence_each(never)
    for command, _, output in never:
        assert "no running demo recorded" in output, f"camsort {command}:\n{output}"

    write_state(tmp_path / "cache" / "demo", f"http://127.0.0.1:{free_port()}", "local", pid=None)
    gone = _run_all(_commands("", "", None, tmp_path, tiny_model_dir), tmp_path)
    _assert_one_sentence_each(gone)
    for command, _, output in gone:
        assert "the demo's moto server is not running" in output, f"camsort {command}:\n{output}"


def test_debug_shows_the_traceback(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    quiet = camsort(f"results --camera cam-01 --endpoint-url {url}", cache_dir=tmp_path, cwd=tmp_path)
    loud = camsort(f"--debug results --camera cam-01 --endpoint-url {url}", cache_dir=tmp_path, cwd=tmp_path)
    assert quiet.returncode == 1 and TRACEBACK not in quiet.stdout
    assert loud.returncode == 1 and TRACEBACK in loud.stdout and "EndpointConnectionError" in loud.stdout
