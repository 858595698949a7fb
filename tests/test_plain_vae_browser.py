"""The plain VAE (no controls) in the explorer in a real headless Chromium: the page loads, decodes, shows
no control sliders or pads, raises no script error, and its file chooser lists the reader registry's
upload-safe formats (served by /api/model, nothing hard-coded in index.html)."""

import pytest

from test_explorer_browser import _settle, browser, explorer_server  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.slow


def test_plain_vae_in_a_real_browser(browser, tiny_export):  # noqa: F811
    from musicvae_xai.readers import registry as reader_registry

    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with explorer_server(str(tiny_export("plain_vae"))) as url:
        page.goto(url)
        page.wait_for_selector("body[data-seed]", timeout=240_000)
        _settle(page)
        assert page.locator("#sliders input[data-control]").count() == 0
        assert page.locator(".pad-canvas").count() == 0
        tokens = page.locator("#output-roll").get_attribute("data-tokens")
        assert tokens and len(tokens.split(",")) == 24
        accept = page.locator("#upload-input").get_attribute("accept")
        assert sorted(accept.split(",")) == sorted(reader_registry.extension_map(upload_only=True))
    assert errors == []
