"""`camsort dashboard` rendered from the local stack, checked as text and in a real headless browser."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from tests.e2e.test_state_pipeline import solid_jpeg
from tests.fixtures.browser import CHROMIUM_FLAGS

pytestmark = pytest.mark.e2e


@pytest.fixture
def dashboard_page(local_stack, run_worker, tmp_path):
    """cam-05 sees the road empty, then a bus that stays; cam-06 a car; one upload is not an image."""
    s3 = local_stack.client("s3")
    prefix = local_stack.names.frames_prefix
    for second, label in enumerate(["empty", "empty", "bus", "bus", "bus", "bus"]):
        s3.put_object(Bucket=local_stack.names.bucket, Key=f"{prefix}cam-05/20261122T1200{second:02d}000Z.jpg",
                      Body=solid_jpeg(label))  # fmt: skip
    for second in range(3):
        s3.put_object(Bucket=local_stack.names.bucket, Key=f"{prefix}cam-06/20261122T1200{second:02d}000Z.jpg",
                      Body=solid_jpeg("car"))  # fmt: skip
    s3.put_object(
        Bucket=local_stack.names.bucket, Key=f"{prefix}cam-05/20261122T120030000Z.jpg", Body=b"hello"
    )
    run_worker()
    out = tmp_path / "dashboard.html"
    result = CliRunner().invoke(
        main,
        ["dashboard", "--endpoint-url", local_stack.endpoint_url, "--table", local_stack.names.table,
         "--out", str(out)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_the_page_shows_states_events_thumbnails_and_rejections(dashboard_page):
    page = dashboard_page.read_text()
    sections = dict(re.findall(r'<section class=camera id="([^"]+)">(.*?)</section>', page, flags=re.DOTALL))
    assert set(sections) == {"cam-05", "cam-06"}
    cam5, cam6 = sections["cam-05"], sections["cam-06"]
    assert re.search(
        r"<span class=state[^>]*>bus</span>\s*<small>since 2026-11-22T12:00:02.000Z</small>", cam5
    )
    assert re.search(
        r"<span class=state[^>]*>car</span>\s*<small>since 2026-11-22T12:00:00.000Z</small>", cam6
    )
    # the timeline: a "none" bar then a "bus" bar; the bus listed with its frames
    assert len(re.findall(r"<rect ", cam5)) == 2
    assert "<td>bus</td><td>2026-11-22T12:00:02.000Z</td><td>(now)</td><td>4</td>" in cam5
    # latest frames: real thumbnails (JPEG data URIs) with label and confidence, newest first
    thumbnails = re.findall(r'<img src="data:image/jpeg;base64,[A-Za-z0-9+/=]+"', cam5)
    assert len(thumbnails) == 6
    captions = re.findall(r"<figcaption>(\w+) (\d\.\d\d)<br><small>([^<]+)</small>", cam5)
    assert [c[0] for c in captions] == ["bus"] * 4 + ["empty"] * 2
    assert [c[2] for c in captions] == sorted((c[2] for c in captions), reverse=True)
    # the rejected upload and its reason
    assert "20261122T120030000Z.jpg</td><td" in cam5 and "not_jpeg_or_png" in cam5
    assert "rejected frames" not in cam6


def test_the_page_in_headless_chromium_is_not_blank(dashboard_page, tmp_path, chromium_path):
    screenshot = tmp_path / "dashboard.png"
    subprocess.run(
        [chromium_path, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--hide-scrollbars", "--window-size=1200,900", f"--screenshot={screenshot}", dashboard_page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    pixels = np.asarray(Image.open(screenshot).convert("RGB"))
    assert pixels.shape == (900, 1200, 3)
    # not one flat colour: text, the state badges, the timeline and the thumbnails are drawn
    assert pixels.std() > 10
    colours = {tuple(p) for p in pixels.reshape(-1, 3)[::7]}
    assert len(colours) > 50
    # the thumbnails of the solid-colour frames: pure-ish red (bus) pixels are on the page
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 160 * 90


def test_a_camera_with_regions_shows_each_regions_state(local_stack, stack_model_uri, tmp_path):
    """cam-r: four regions (two answered by the named model bay); the page lists each region's state."""
    import json

    from functions import env
    from functions.frames.manifest import read_manifest
    from functions.stores.camera_configs import camera_config_key
    from infra.local.stack import pinned_sha256, upload_model
    from infra.local.worker import SqsWorker
    from tests.fixtures.local_stack import worker_environment
    from tests.fixtures.tiny_model import write_tiny_model
    from tests.functional.test_regions_function import REGIONS, quadrants

    bay_dir = write_tiny_model(tmp_path / "bay", ["occupied", "free", "dark"], "bay-1")
    bay_uri = upload_model(local_stack, bay_dir, version=f"bay/{read_manifest(bay_dir).model_version}")
    named = json.dumps({"bay": {"uri": bay_uri, "sha256": pinned_sha256(bay_uri)}})
    s3, bucket = local_stack.client("s3"), local_stack.names.bucket
    s3.put_object(Bucket=bucket, Key=camera_config_key("cam-r"), Body=json.dumps(REGIONS).encode())
    for second in range(3):
        key = f"{local_stack.names.frames_prefix}cam-r/20261122T1200{second:02d}000Z.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=quadrants())
    environment = worker_environment(local_stack, stack_model_uri, tmp_path, extra={env.NAMED_MODELS: named})
    SqsWorker(local_stack, environment).run_until_drained(idle_s=0.5, max_duration_s=90)
    out = tmp_path / "dashboard.html"
    result = CliRunner().invoke(
        main,
        ["dashboard", "--endpoint-url", local_stack.endpoint_url, "--table", local_stack.names.table, "--out", str(out)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text()
    (section,) = re.findall(r'<section class=camera id="cam-r">(.*?)</section>', page, flags=re.DOTALL)
    assert "4 regions" in section
    rows = dict(re.findall(r"<tr><td>(q\d)</td><td><span class=state[^>]*>(\w+)</span>", section))
    # two frames in a row settle each region (the default rule); the bay model's "dark" and the
    # default's "bus" are states, "free" is not ignored either; the grey quadrant stays unknown
    assert rows == {"q1": "bus", "q2": "free", "q3": "dark", "q4": "none"}
    captions = re.findall(r"<figcaption>([^<]+) \d\.\d\d<br>", section)
    assert captions and all("q1=bus" in caption for caption in captions)
