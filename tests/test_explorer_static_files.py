"""The static explorer's files without a browser: the vendored TensorFlow.js and @tonejs/midi builds are
the npm packages that web/package.json and package-lock.json pin (compared file by file after
``npm ci``, which CI runs), the page loads nothing from another host, the package ships every file the
site builder copies, and the builder refuses a folder it would clobber."""

import json
import os
import re
import tomllib

import pytest

from musicvae_xai.explorer import static_site

WEB = static_site.WEB_DIR
NODE_MODULES = os.path.join(WEB, "node_modules")


def test_package_json_pins_exact_versions_that_the_lock_holds():
    with open(os.path.join(WEB, "package.json"), encoding="utf-8") as f:
        pins = json.load(f)["dependencies"]
    with open(os.path.join(WEB, "package-lock.json"), encoding="utf-8") as f:
        lock = json.load(f)["packages"]
    for name, version in pins.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
        assert lock[f"node_modules/{name}"]["version"] == version
    needed = {source.split("/dist/")[0].split("/build/")[0] for source in static_site.VENDOR_FILES.values()}
    assert needed <= set(pins)


def test_vendored_files_are_the_pinned_npm_builds():
    if not os.path.isdir(NODE_MODULES):
        pytest.skip("no web/node_modules: run `npm ci` in musicvae_xai/explorer/web (CI does)")
    for name, source in static_site.VENDOR_FILES.items():
        with open(os.path.join(static_site.VENDOR_DIR, name), "rb") as vendored:
            with open(os.path.join(NODE_MODULES, source), "rb") as pinned:
                assert vendored.read() == pinned.read(), f"vendor/{name} differs from {source}: run refresh_vendor"


def test_the_page_loads_nothing_from_another_host():
    for name in static_site.WEB_FILES + static_site.SHARED_FILES:
        folder = static_site.WEB_DIR if name in static_site.WEB_FILES else static_site.SERVER_STATIC_DIR
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            text = f.read()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name
        assert not re.search(r"(fetch|import)\s*\(?\s*[\"'](https?:)?//", text), name
    with open(os.path.join(WEB, "index.html"), encoding="utf-8") as f:
        assert "connect-src 'self'" in f.read()


def test_the_package_ships_what_the_builder_copies():
    with open(os.path.join(os.path.dirname(static_site.__file__), "..", "..", "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["musicvae_xai"]
    assert {"explorer/web/*", "explorer/web/vendor/*", "explorer/static/*"} <= set(patterns)
    for name in static_site.WEB_FILES:
        assert os.path.isfile(os.path.join(WEB, name)), name
    for name in list(static_site.VENDOR_FILES) + ["LICENSES.md"]:
        assert os.path.isfile(os.path.join(static_site.VENDOR_DIR, name)), name


def test_the_builder_refuses_a_folder_it_would_clobber(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(static_site.SiteError, match="not empty"):
        static_site.build_site(str(tmp_path))
    (tmp_path / "file").write_text("x")
    with pytest.raises(static_site.SiteError, match="not a folder"):
        static_site.build_site(str(tmp_path / "file"))
    assert (tmp_path / "notes.txt").read_text() == "mine"
