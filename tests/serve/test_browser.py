"""The web app in a real browser: Playwright driving Debian's Chromium (never `playwright
install`). Set SCREENSHOTS_DIR to keep a screenshot of each tab (the README's come from it)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from playwright.sync_api import expect, sync_playwright

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABS = ["Simpsons", "Detection", "Segmentation", "Translation", "Sales forecast", "Churn"]


@pytest.fixture(scope="module")
def page(app, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        page = browser.new_page()
        page.goto(app)
        expect(page.get_by_role("tab", name="Detection")).to_be_visible(timeout=60_000)
        yield page
        browser.close()


def screenshot(page, name: str) -> None:
    if os.environ.get("SCREENSHOTS_DIR"):
        shots = Path(os.environ["SCREENSHOTS_DIR"])
        shots.mkdir(parents=True, exist_ok=True)
        file = f"serve-{name.lower().replace(' ', '-')}.png"
        page.screenshot(path=str(shots / file), full_page=True)


def test_every_tab_renders(page):
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tab", name=tab, selected=True)).to_be_visible()
        screenshot(page, tab)


def test_detection_in_the_browser_keeps_boxes_above_the_chosen_confidence(page, pipeline, tmp_path):
    test = torch.load(pipeline / "data/processed/detection/test.pt")
    image = tmp_path / "site.png"
    Image.fromarray(test["images"][0].permute(1, 2, 0).numpy()).save(image)

    page.get_by_role("tab", name="Detection").click()
    page.locator("#detection-image input[type=file]").set_input_files(str(image))
    confidence = page.locator("#detection-confidence input[type=number]")
    confidence.fill("0.3")
    confidence.press("Enter")
    page.locator("#detection-run").click()
    table = page.locator("#detection-table")
    expect(table).to_contain_text(re.compile("head|helmet|person"), timeout=60_000)
    cells = [cell.strip() for cell in table.inner_text().splitlines()]  # a cell a line
    classes = {"head", "helmet", "person"}
    scores = [float(cells[i + 1]) for i, cell in enumerate(cells[:-1]) if cell in classes]
    assert scores and min(scores) >= 0.3, scores
    screenshot(page, "detection")


def test_a_text_file_renamed_jpg_gets_a_message_in_the_page(page, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a photo at all")
    page.reload()  # a fresh page: the upload field is empty again
    page.get_by_role("tab", name="Detection").click()
    page.locator("#detection-image input[type=file]").set_input_files(str(fake))
    page.locator("#detection-run").click()
    expect(page.get_by_text("holiday.jpg: not an image (expected PNG or JPEG)")).to_be_visible(
        timeout=30_000
    )
