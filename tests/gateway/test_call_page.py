"""The call page (issue 14), in a real browser: Debian's chromium, driven headless by Playwright.

A call with two barge-ins is made on the talking gateway (the real STT, an LLM endpoint
answering six sentences, audio kept under consent), replayed with ``earshot replay
--json`` and drawn with ``--html``. Every word and every cut must sit where the replay
JSON's timeline says, to the pixel, at the page's first scale and zoomed in; a
screenshot is kept in ``var/artifacts/``. A 30-minute call's page must open in under
2 s and stay usable. The gateway serves the same page only to the metrics token.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from playwright.async_api import Browser, Page, async_playwright

from actors.core.audio_formats import phrase_to_mulaw
from actors.engines.speech_synthesis import HibariEngine
from gateway import call_page
from gateway.app import EarshotApp
from gateway.simulate import SimulatedCaller, Utterance
from tests.support.fault_llm import FaultInjectingLlm
from tests.support.gateway import AUTH_TOKEN, DATA_KEY_ENV, REPO, earshot, stored_call
from tests.support.long_call import long_call

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "var" / "artifacts"
PIXEL = 1.0  # the page rounds nothing; the browser lays out to sub-pixels


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def opened(browser: Browser, html: Path) -> tuple[Page, float]:
    """The page, once drawn, and how long that took from the navigation (s)."""
    page = await browser.new_page(viewport={"width": 1400, "height": 460})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    started = time.perf_counter()
    await page.goto(html.as_uri())
    await page.wait_for_function("window.callPage && window.callPage.ready")
    took = time.perf_counter() - started
    assert not errors, errors
    return page, took


async def drawn(page: Page) -> dict[str, Any]:
    """Every word's and cut's box, relative to the axis, with the scale in force."""
    result: dict[str, Any] = await page.evaluate(
        """() => {
          const origin = document.getElementById("axis").getBoundingClientRect().left;
          const box = (el) => { const r = el.getBoundingClientRect();
                                return [r.left - origin, r.width]; };
          return {
            scale: window.callPage.scale(),
            words: [...document.querySelectorAll(".word")].map((el) =>
              [+el.dataset.reply, +el.dataset.index, ...box(el), el.className]),
            cuts: [...document.querySelectorAll(".cut")].map((el) =>
              [+el.dataset.reply, ...box(el)]),
          };
        }"""
    )
    return result


def assert_where_the_json_says(shown: dict[str, Any], timeline: dict[str, Any]) -> None:
    scale = shown["scale"]
    words = {(reply, index): rest for reply, index, *rest in shown["words"]}
    expected = [
        (reply["reply_id"], index, word)
        for reply in timeline["agent"]
        for index, word in enumerate(reply["words"])
    ]
    assert len(words) == len(expected) > 0
    for reply_id, index, word in expected:
        left, width, classes = words[(reply_id, index)]
        assert abs(left - word["start_ms"] * scale) <= PIXEL, (word, left, scale)
        assert abs(width - (word["end_ms"] - word["start_ms"]) * scale) <= PIXEL, (word, width)
        assert word["heard"] in classes.split(), (word, classes)
    cuts = {reply: (left, width) for reply, left, width in shown["cuts"]}
    expected_cuts = {r["reply_id"]: r["cut"] for r in timeline["agent"] if r["cut"]}
    assert cuts.keys() == expected_cuts.keys()
    for reply_id, cut in expected_cuts.items():
        left, width = cuts[reply_id]
        assert abs(left + width / 2 - cut["at_ms"] * scale) <= PIXEL, (cut, left, scale)


def printed(*args: str, env: dict[str, str]) -> str:
    done = earshot(*args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_call_with_barge_ins_is_drawn_where_its_replay_says(
    talking_gateway: tuple[str, EarshotApp],
    long_reply: FaultInjectingLlm,
    browser: Browser,
    tmp_path: Path,
) -> None:
    base, app = talking_gateway
    voice = HibariEngine()
    lines = ("Could I book a table for two tonight?", "Sorry, one more thing.")
    spoken = [phrase_to_mulaw(p.samples, p.rate) for p in map(voice.synthesize, lines)]
    script = [
        Utterance(spoken[0], cut_in_after_agent_ms=2600.0),  # the announcement heard
        Utterance(spoken[1], cut_in_after_agent_ms=3500.0),  # into the six sentences
    ]
    caller = SimulatedCaller(base, auth_token=AUTH_TOKEN, script=script, hang_up_after_s=18.0)
    truth = await caller.run()
    assert len(truth.clears) == 2, truth.clears
    await stored_call(app, truth.call_sid)
    env = {"EARSHOT_DB_URL": app.settings.db_url, **DATA_KEY_ENV}
    document = json.loads(printed("replay", truth.call_sid, "--json", env=env))
    timeline = document["timeline"]
    assert sum(reply["cut"] is not None for reply in timeline["agent"]) == 2
    kinds = [word["heard"] for reply in timeline["agent"] for word in reply["words"]]
    assert {"heard", "unheard"} <= set(kinds)
    html = tmp_path / "call.html"
    printed("replay", truth.call_sid, "--html", str(html), env=env)
    page, _ = await opened(browser, html)
    first = await drawn(page)
    assert_where_the_json_says(first, timeline)
    assert await page.locator("svg.wave path").count() == 2  # both voices, kept with consent
    cursor_ms = await page.evaluate(
        """() => new Promise((done) => {
             const player = document.getElementById("audio");
             player.addEventListener("seeked", () => requestAnimationFrame(() => {
               const cursor = document.getElementById("cursor").getBoundingClientRect();
               const axis = document.getElementById("axis").getBoundingClientRect();
               done((cursor.left - axis.left) / window.callPage.scale());
             }), {once: true});
             player.currentTime = 4.0;
           })"""
    )
    assert abs(cursor_ms - 4000.0) <= PIXEL / first["scale"]  # the cursor follows the audio
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "call_page.png"), full_page=True)
    await page.click("#zoom-in")
    await page.click("#zoom-in")
    zoomed = await drawn(page)
    assert zoomed["scale"] == pytest.approx(4 * first["scale"])
    assert_where_the_json_says(zoomed, timeline)


async def test_a_30_minute_call_opens_in_under_2_s_and_zooms_and_scrolls(
    browser: Browser, tmp_path: Path
) -> None:
    events = long_call(minutes=30)
    html = tmp_path / "long.html"
    html.write_text(call_page.render(events, "CALONG"))
    page, took = await opened(browser, html)
    print(f"a 30-minute call's page opened in {took * 1000:.0f} ms")
    assert took < 2.0
    shown = await drawn(page)
    assert len(shown["words"]) > 2000 and len(shown["cuts"]) == 60
    started = time.perf_counter()
    await page.click("#zoom-in")
    await page.evaluate(
        "() => { const s = document.getElementById('scroller'); s.scrollLeft = s.scrollWidth; }"
    )
    assert time.perf_counter() - started < 1.0
    last = await page.evaluate(
        "() => { const w = [...document.querySelectorAll('.word')].pop();"
        " const r = w.getBoundingClientRect(); return [r.left, r.right]; }"
    )
    assert 0 <= last[0] < last[1] <= 1400, last  # scrolled to the end, the last word in view


def get(url: str, token: str | None) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urlopen(Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read().decode()
    except HTTPError as error:
        return error.code, error.read().decode()


async def test_the_gateways_call_pages_need_the_token(
    talking_gateway: tuple[str, EarshotApp],
) -> None:
    base, app = talking_gateway
    truth = await SimulatedCaller(base, auth_token=AUTH_TOKEN, script=[], hang_up_after_s=3.0).run()
    await stored_call(app, truth.call_sid)
    for path in ("/calls", f"/calls/{truth.call_sid}"):
        for token in (None, "wrong"):
            status, body = get(base + path, token)
            assert status == 401 and body.startswith("unauthorized"), (path, token, body)
    status, listing = get(base + "/calls", "metrics-secret")
    assert status == 200 and f'href="/calls/{truth.call_sid}"' in listing
    status, page = get(base + f"/calls/{truth.call_sid}?at=5", "metrics-secret")
    assert status == 200 and '"at_seq":5' in page and truth.call_sid in page
    assert get(base + "/calls/CA-no-such-call", "metrics-secret")[0] == 404
