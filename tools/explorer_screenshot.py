"""Screenshot of the explorer as a user first meets it: ``python -m musicvae_xai.explorer`` with no model
flags (the pretrained model shipped in the package), the first seed measure of its dataset, the
note-density control (z[2]) moved to +1.5, in headless Chromium (Debian's /usr/bin/chromium driven by
Playwright, as tests/test_explorer_browser.py does).

    python tools/explorer_screenshot.py [--out=docs/explorer.png] [--note_density=1.5]

Run from the repository root (tools/regenerate_figures.sh runs it). Exits with one line when Chromium,
Playwright or the explorer is not there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

CHROMIUM = "/usr/bin/chromium"


def wait_for(page, expression: str, timeout: float) -> None:
    """Polls a JavaScript expression (the page's Content-Security-Policy forbids wait_for_function)."""
    deadline = time.time() + timeout
    while not page.evaluate(expression):
        if time.time() > deadline:
            sys.exit(f"error: timed out waiting for {expression}")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/explorer.png")
    parser.add_argument("--note_density", type=float, default=1.5, help="value of the note-density control z[2]")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"error: no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    from musicvae_xai.explorer.server import running_explorer

    try:
        with running_explorer((), args.timeout) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.wait_for_selector("body[data-seed]", timeout=args.timeout * 1000)
            wait_for(page, "document.body.dataset.busy === '0'", args.timeout)
            page.locator('#sliders input[data-control="2"]').fill(str(args.note_density))
            wait_for(page, "document.body.dataset.busy === '0'", args.timeout)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    except RuntimeError as e:  # the explorer did not start: the end of its output
        sys.exit(f"error: {e}")
    print(f"wrote {args.out} ({url})")


if __name__ == "__main__":
    main()
