"""The attention explorer page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import ROOT
from tests.service.conftest import Server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "test-output"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (make test installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's launch() already starts Chromium on a fresh, temporary user-data dir.
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
    ]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


def _open(browser: Browser, server: Server) -> Page:
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(server.url + "/")
    return page


def _level(background: str) -> float:
    """Lightness of an rgb() colour: the darker, the more attention."""
    r, g, b = (int(x) for x in re.findall(r"\d+", background)[:3])
    return (max(r, g, b) + min(r, g, b)) / 2


def test_page_predicts_and_shades_the_most_attended_token_darkest(browser: Browser, server: Server) -> None:
    text = "A gorgeous, heartfelt film that never bores."
    page = _open(browser, server)
    page.fill("#texts", text)
    page.click("#predict")
    page.wait_for_selector(".card")
    expected = server.client.post("/predict", json={"text": text}).json()["predictions"][0]
    assert page.inner_text(".card .label") == expected["label"]
    marks = page.query_selector_all(".card mark.tok")
    assert [m.inner_text() for m in marks] == [t["text"] for t in expected["tokens"]]
    weights = [float(m.get_attribute("data-attention") or 0) for m in marks]
    assert weights == pytest.approx([t["attention"] for t in expected["tokens"]])  # the API's weights
    lightness = [_level(m.evaluate("e => getComputedStyle(e).backgroundColor")) for m in marks]
    top = weights.index(max(weights))
    assert min(lightness) < max(lightness), "some tokens are shaded, others not"
    assert lightness[top] == min(lightness), "the most-attended token is shaded darkest"
    assert f"{weights[top]:.4f}" in (marks[top].get_attribute("title") or "")  # the hover text
    assert page.inner_text(".card .text") == text  # the original text, spaces and all
    SHOTS.mkdir(exist_ok=True)
    page.fill("#texts", "A gorgeous, heartfelt film that never bores.\nDull, overlong and utterly predictable.")
    page.click("#predict")
    page.wait_for_function("document.querySelectorAll('.card').length === 2")
    page.screenshot(path=str(SHOTS / "explorer.png"), full_page=True)
    assert (SHOTS / "explorer.png").stat().st_size > 10_000
    page.close()


def test_page_is_keyboard_usable(browser: Browser, server: Server) -> None:
    page = _open(browser, server)
    page.focus("#texts")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".card")
    assert len(page.query_selector_all(".card")) == 2  # the two example lines
    page.close()


def test_page_shows_api_errors_as_they_are(browser: Browser, start_server: Callable[..., Server]) -> None:
    s = start_server(api_key="s3cret")
    page = _open(browser, s)
    page.click("#predict")
    page.wait_for_selector("#error:not([hidden])")
    error = page.inner_text("#error")
    assert "401" in error and "missing or wrong API key" in error and "Authorization: Bearer" in error
    page.fill("#key", "s3cret")
    page.click("#predict")
    page.wait_for_selector(".card")
    assert page.is_hidden("#error")
    page.close()
