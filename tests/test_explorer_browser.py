"""market explore in a real browser: headless Chromium (Debian's package) driven by Playwright.

The server is the real ``market explore`` command on a free port; runs are tiny (3 replications of
6 months) so the whole file takes well under a minute. Screenshots go to outputs/explorer/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import market

ROOT = Path(__file__).parent.parent
SHOTS = ROOT / "outputs" / "explorer"
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(target: str | None, tmp: Path):
    port = _free_port()
    args = [sys.executable, "-m", "market", "explore", *([target] if target else []), "--port", str(port),
            "--no-open", "--workers", "2"]
    log = (tmp / f"server-{port}.log").open("w")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"market explore exited: {(tmp / f'server-{port}.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("market explore did not answer within 60 s")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def whatif_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whatif")
    # OpenAI's demand differs from baseline, so it is one of the page's levers: a text field (its range is
    # open below: more than 0); the levers bounded at both ends are sliders
    scenario = tmp / "openai_google_tpu_demand.toml"
    scenario.write_text('extends = "openai_google_tpu"\n[labs.openai]\ndemand_pflops = 1.2e6\n')
    proc, url = _serve(str(scenario), tmp)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sweep")
    exp = tmp / "e.toml"
    exp.write_text('name = "browse"\nscenarios = ["baseline", "openai_google_tpu"]\nreplications = 2\nsteps = 6\n'
                   'base_seed = 3\n[design]\nkind = "grid"\n'
                   '[design.parameters."labs.openai.switching_cost"]\nvalues = [0.5, 2.0]\n')
    report = market.sweep(exp, tmp / "out", workers=1, progress=False)
    assert report.failed == 0
    return tmp / "out"


def _page(browser, url):
    page = browser.new_page(viewport={"width": 1500, "height": 1200})
    page.goto(url)
    page.wait_for_selector("text=Levers", timeout=60_000)
    return page


def _small_run(page) -> None:
    page.get_by_label("Replications").fill("3")
    page.get_by_label("Months (empty: the scenario's)").fill("6")


def _figure_src(page, name: str) -> str:
    return page.locator(f".figure-{name} img").first.get_attribute("src")


def test_the_page_loads_with_the_scenarios_levers(browser, whatif_server) -> None:
    page = _page(browser, whatif_server)
    assert page.get_by_text("Google Cloud: share of its top-tier TPUs withheld").is_visible()
    assert page.get_by_text("share [0 to 1]").is_visible()  # the range comes from the schema
    assert page.get_by_text("switching_cost [0 to 10]").is_visible()  # a slider
    assert page.get_by_text("labs.openai.demand_pflops [more than 0 and at most 1e+12]").is_visible()  # a text field
    assert page.get_by_text("Compute market: clearing rule across substitute products").is_visible()  # a choice
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / "whatif_loaded.png", full_page=True)
    page.close()


def test_a_lever_change_and_run_changes_the_figure(browser, whatif_server) -> None:
    page = _page(browser, whatif_server)
    _small_run(page)
    page.locator(".run-button").click()
    page.wait_for_selector("text=all 3 of 3 pairs", timeout=120_000)
    page.wait_for_selector(".figure-vendor_shares img", timeout=30_000)
    before = _figure_src(page, "vendor_shares")
    table_before = page.locator(".comparison").inner_text()
    assert "Nvidia compute share" in table_before and "95% CI" in table_before
    # OpenAI's demand (a text field: its range is open below) from 1.2 M to 4 M PFLOP/s
    field = page.get_by_label("labs.openai.demand_pflops [more than 0 and at most 1e+12]")
    field.fill("4e6")
    field.press("Enter")
    page.locator(".run-button").click()
    page.wait_for_selector("text=openai_google_tpu_demand + changes vs baseline: all 3 of 3 pairs", timeout=120_000)
    page.wait_for_selector(".figure-vendor_shares img", timeout=30_000)
    after = _figure_src(page, "vendor_shares")
    assert after != before
    assert page.locator(".comparison").inner_text() != table_before
    page.screenshot(path=SHOTS / "whatif_after_run.png", full_page=True)
    for name in ("withholding", "lab_mix_over_time"):  # below the fold: each figure on its own (if drawn:
        if page.locator(f".figure-{name}").count():  # a short run may withhold nothing)
            page.locator(f".figure-{name}").screenshot(path=SHOTS / f"whatif_{name}.png")
    assert page.locator(".figure-lab_mix_over_time").count() == 1
    page.close()


def test_the_clearing_rule_is_picked_from_a_list_and_the_run_uses_it(browser, whatif_server) -> None:
    page = _page(browser, whatif_server)
    meanings = page.locator(".choice-meanings")
    assert "joint (chosen): all products cleared together" in meanings.inner_text()  # the schema's words
    assert "ignored: each product on its own" in meanings.inner_text()
    page.locator(".v-select", has=page.get_by_text("substitutes", exact=True)).click()
    page.locator(".v-list-item", has_text="ignored").click()
    page.wait_for_selector("text=ignored (chosen)", timeout=10_000)
    _small_run(page)
    page.locator(".run-button").click()
    page.wait_for_selector("text=openai_google_tpu_demand + changes vs baseline: all 3 of 3 pairs", timeout=120_000)
    assert "--set negotiation.substitutes=ignored" in page.inner_text("body")
    page.screenshot(path=SHOTS / "whatif_clearing_rule.png", full_page=True)
    page.close()


def test_a_bad_value_shows_the_error_and_the_page_stays_usable(browser, whatif_server) -> None:
    page = _page(browser, whatif_server)
    field = page.get_by_label("labs.openai.demand_pflops [more than 0 and at most 1e+12]")
    field.fill("-1")
    field.press("Enter")
    error = page.locator(".lever-error")
    error.wait_for(timeout=10_000)
    text = error.inner_text()
    assert "labs.openai.demand_pflops" in text and "allowed: a number more than 0" in text
    assert "Traceback" not in page.inner_text("body")
    assert page.locator(".run-button").is_disabled()
    page.screenshot(path=SHOTS / "whatif_bad_value.png", full_page=True)
    field.fill("2e6")
    field.press("Enter")
    page.wait_for_selector(".lever-error", state="detached", timeout=10_000)
    assert page.locator(".run-button").is_enabled()
    page.close()


def test_the_sweep_browser_filters(browser, sweep_dir, tmp_path) -> None:
    proc, url = _serve(str(sweep_dir), tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(url)
        count = page.locator(".selection-count")
        count.wait_for(timeout=60_000)
        assert "8 runs selected" in count.inner_text()
        page.wait_for_selector(".figure-vendor_shares img", timeout=30_000)
        page.screenshot(path=SHOTS / "sweep_all.png", full_page=True)
        # keep one value of the design parameter: half the runs
        page.locator(".v-select", has_text="labs.openai.switching_cost").click()
        page.locator(".v-list-item", has_text="0.5").click()
        page.keyboard.press("Escape")
        page.wait_for_selector("text=4 runs selected", timeout=30_000)
        page.screenshot(path=SHOTS / "sweep_filtered.png", full_page=True)
        # an unreadable folder: a message, and the page still works
        page.get_by_label("Experiment folder").fill(str(tmp_path / "nowhere"))
        page.locator(".open-button").click()
        page.locator(".sweep-error").wait_for(timeout=10_000)
        assert "is not a folder" in page.locator(".sweep-error").inner_text()
        assert "4 runs selected" in page.locator(".selection-count").inner_text()
        page.close()
    finally:
        proc.terminate()
        proc.wait(10)
