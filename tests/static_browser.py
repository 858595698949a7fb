"""Helpers of the static explorer's browser tests: headless Chromium (Debian's /usr/bin/chromium driven
by Playwright) and a built site opened from a local static HTTP server."""

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from musicvae_xai.explorer.static_site import serve_folder

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium():
    """A headless Chromium (skips the test where none is installed; CI installs Debian's)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (CI installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def wait_for(page, expression: str, timeout: float = 60.0) -> None:
    """Polls a JavaScript expression until it is true."""
    deadline = time.time() + timeout
    while not page.evaluate(expression):
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {expression}; message: "
                                 f"{page.locator('#message').inner_text()!r}")
        time.sleep(0.05)


@contextlib.contextmanager
def open_site(browser, folder: str, query: str = "", **page_options):
    """Serves ``folder`` and opens its page; yields (page, errors) once the model is loaded. ``errors``
    collects the page's uncaught exceptions and console errors."""
    with serve_folder(folder) as url:
        page = browser.new_page(**page_options)
        errors: list = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url + query)
        wait_for(page, "document.body.dataset.ready === '1'")
        try:
            yield page, errors
        finally:
            page.close()


@contextlib.contextmanager
def http_server(folder: str):
    """``python -m http.server`` on a free port serving ``folder``; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
