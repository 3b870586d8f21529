"""`camsort label`: the page in headless Chromium (selenium + chromium-driver), no mocked DOM.

The set is sampled for real (`camsort sample`'s library call) from two cameras of colour
frames scored by the tiny ONNX model, served by the real server; the tests press keys and
click like a person, then read ``labels.jsonl`` and ``session.json`` from disk.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from infra.labelling.label_server import frame_fetcher, serving
from infra.labelling.label_set import LABELS_FILE, SESSION_FILE, LabelStore
from infra.labelling.sample import SampleOptions, sample_command
from tests.fixtures.images import encode

pytestmark = pytest.mark.e2e

# Red -> bus, green -> car, blue -> empty for the tiny model; mixes make the margins differ.
COLOURS = [(250, 10, 0), (120, 110, 0), (0, 250, 10), (0, 120, 110), (10, 0, 250), (128, 90, 0)]


@pytest.fixture
def label_set(tmp_path, tiny_model_dir) -> Path:
    start = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    for camera in ("cam-01", "cam-02"):
        for i, colour in enumerate(COLOURS):
            path = tmp_path / "frames" / camera / f"{start + timedelta(minutes=i):%Y%m%dT%H%M%S}000Z.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(Image.new("RGB", (320, 180), colour), "JPEG", quality=95))
    out = tmp_path / "set"
    sample_command(
        str(tmp_path / "frames"), out, SampleOptions(per_camera=5, candidates=6),
        model_uri=str(tiny_model_dir), output_format="camsort", s3_client=None,
    )  # fmt: skip
    return out


@pytest.fixture
def page(label_set, browser):
    """The browser on the set's page, served for the test; yields (driver, set dir, manifest rows)."""
    store = LabelStore.open(label_set)
    with serving(store, fetch_frame=frame_fetcher(None)) as url:
        browser.get(url + "/")
        _wait(browser, lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        yield browser, label_set, url


def _wait(driver, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _keys(driver, *keys) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*keys).perform()


def _progress(driver) -> str:
    return driver.find_element("id", "progress").text


def _labels(set_dir: Path) -> dict[str, str]:
    path = set_dir / LABELS_FILE
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["id"]: row["labels"][0] for row in rows}


def _card_ids(driver) -> list[str]:
    return [card.get_attribute("data-id") for card in driver.find_elements("css selector", ".card")]


def test_digits_label_and_advance_skip_and_undo_are_on_disk_at_once(page):
    driver, set_dir, _ = page
    ids = _card_ids(driver)
    assert len(ids) == 10 and _progress(driver) == "0 / 10 labelled, 0 skipped"
    _keys(driver, "1")  # the focused first frame -> bus, focus moves on
    _wait(driver, lambda d: _progress(d).startswith("1 / 10"))
    _keys(driver, "2")
    _wait(driver, lambda d: _progress(d).startswith("2 / 10"))
    assert _labels(set_dir) == {ids[0]: "bus", ids[1]: "car"}
    _keys(driver, "s")  # the third is skipped
    _wait(driver, lambda d: _progress(d).endswith("1 skipped"))
    assert json.loads((set_dir / SESSION_FILE).read_text())["skipped"] == [ids[2]]
    _keys(driver, "u")  # undo the skip
    _wait(driver, lambda d: _progress(d).endswith("0 skipped"))
    assert json.loads((set_dir / SESSION_FILE).read_text())["skipped"] == []
    # focus is back on the third; select it and the fifth with space, label both "empty" with 3
    from selenium.webdriver.common.keys import Keys

    _keys(driver, " ", Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, " ")
    _wait(driver, lambda d: len(d.find_elements("css selector", ".card.selected")) == 2)
    _keys(driver, "3")
    _wait(driver, lambda d: _progress(d).startswith("4 / 10"))
    assert _labels(set_dir) == {ids[0]: "bus", ids[1]: "car", ids[2]: "empty", ids[4]: "empty"}
    _keys(driver, "u")  # one undo puts back both frames of the last action
    _wait(driver, lambda d: _progress(d).startswith("2 / 10"))
    assert _labels(set_dir) == {ids[0]: "bus", ids[1]: "car"}
    rows = [json.loads(line) for line in (set_dir / LABELS_FILE).read_text().splitlines()]
    assert all(row["path"].endswith(".jpg") and Path(row["path"]).is_file() for row in rows)


def test_shift_click_range_then_label_all_selected(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver, set_dir, _ = page
    ids = _card_ids(driver)
    driver.find_element("id", f"f-{ids[1]}").click()  # the grid is drawn again after each click
    card = driver.find_element("id", f"f-{ids[4]}")
    ActionChains(driver).key_down(Keys.SHIFT).click(card).key_up(Keys.SHIFT).perform()
    _wait(driver, lambda d: len(d.find_elements("css selector", ".card.selected")) == 4)
    Select(driver.find_element("id", "bulk")).select_by_visible_text("car")
    driver.find_element("id", "label-selected").click()
    _wait(driver, lambda d: _progress(d).startswith("4 / 10"))
    assert _labels(set_dir) == dict.fromkeys(ids[1:5], "car")


def test_filters_sort_and_a_link_to_one_frame(page):
    from selenium.webdriver.support.ui import Select

    driver, set_dir, url = page
    state = LabelStore.open(set_dir).state()
    frames = {f["id"]: f for f in state["frames"]}
    Select(driver.find_element("id", "camera")).select_by_visible_text("cam-02")
    shown = _card_ids(driver)
    assert shown and all(frames[i]["camera"] == "cam-02" for i in shown) and len(shown) == 5
    Select(driver.find_element("id", "camera")).select_by_visible_text("all")
    Select(driver.find_element("id", "guess")).select_by_visible_text("empty")
    assert sorted(_card_ids(driver)) == sorted(i for i, f in frames.items() if f["guess"] == "empty")
    Select(driver.find_element("id", "guess")).select_by_visible_text("all")
    Select(driver.find_element("id", "sort")).select_by_value("uncertainty")
    margins = [frames[i]["margin"] for i in _card_ids(driver)]
    assert margins == sorted(margins) and margins[0] < margins[-1]
    box = driver.find_element("id", "maxconf")
    box.send_keys("0.6")
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)
    assert sorted(_card_ids(driver)) == sorted(i for i, f in frames.items() if f["confidence"] <= 0.6)
    # the report's link form: #f-<id> opens with that frame focused
    target = sorted(frames)[7]
    driver.get(f"{url}/#f-{target}")
    driver.refresh()
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    assert driver.find_element("css selector", ".card.focused").get_attribute("data-id") == target
    # the thumbnail really loads (a decoded image, not a broken one)
    assert driver.execute_script(
        "const i = document.querySelector('.card img'); return i.complete && i.naturalWidth > 0"
    )
