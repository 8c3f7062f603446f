"""Take the README's screenshot of the explorer again (docs/figures/explorer.png).

    python docs/explorer_screenshot.py [--port 8931]

Starts ``market explore openai_google_tpu`` on 127.0.0.1 in a scratch folder, opens the what-if
page in headless Chromium (the system's ``chromium``, driven by Playwright, from the ``test``
extra), presses Run (20 + 20 runs against ``baseline`` on 2 workers, about half a minute), waits
for the comparison table and the first figure, scrolls back to the top and saves a 1400 x 1000
screenshot. Run it after a change that moves the model's results or the page's layout, and look at
the image before committing it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "figures" / "explorer.png"


def _wait_for(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the explorer did not answer at {url} within {seconds:.0f} s") from None
            time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8931)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (Debian: apt-get install -y chromium)")
    url = f"http://127.0.0.1:{args.port}/"
    with tempfile.TemporaryDirectory() as scratch:  # the what-if's runs land here, not in outputs/
        server = subprocess.Popen([sys.executable, "-m", "market", "explore", "openai_google_tpu", "--port",
                                   str(args.port), "--no-open", "--workers", "2"], cwd=scratch,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(url)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.wait_for_selector("text=Levers", timeout=60_000)
                page.locator(".run-button").click()
                page.wait_for_selector("text=all 20 of 20 pairs", timeout=300_000)
                page.wait_for_selector(".figure-vendor_shares img", timeout=60_000)
                # clicking Run scrolled the page to the button: back to the top for the picture
                page.evaluate("window.scrollTo(0, 0); document.querySelectorAll('*').forEach(e => { e.scrollTop = 0; })")
                time.sleep(2)
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
