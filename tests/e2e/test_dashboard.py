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
