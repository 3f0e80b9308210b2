"""Shared by the browser tests: the system's Chromium under Playwright, a fresh tab
that records console errors, screenshots under ``tests/ui/screenshots/``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CAIRN_CHROMIUM", "/usr/bin/chromium")
REQUIRE_ALL = os.environ.get("CAIRN_REQUIRE_ALL") == "1"
SHOTS = Path(__file__).parent / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _unavailable(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"CAIRN_REQUIRE_ALL=1 but the browser tests cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


class Console:
    """What a page said: console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Console]]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    console = Console(tab)
    yield tab, console
    context.close()


def shot(tab: Any, name: str, full_page: bool = True) -> None:
    tab.evaluate("window.scrollTo(0, 0)")  # sticky bars are drawn where the page is scrolled
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / ".gitignore").write_text("*\n")
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def visit(tab: Any, url: str) -> None:
    response = tab.goto(url, wait_until="load")
    assert response is not None and response.ok, f"{url}: {response and response.status}"
