"""Builds the static explorer of the pretrained model into the documentation site as it is built
(mkdocs-gen-files runs this script; mkdocs.yml names it): ``explore/index.html`` and the rest of the folder
``musicvae-explorer --static`` writes, so the site carries a page a reader can use with nothing installed,
always made from the model in the package. The site renders the bundled libraries' ``vendor/LICENSES.md`` as
a page of its own, so the page's link to it is pointed there."""

import os
import tempfile

import mkdocs_gen_files

from musicvae_xai.explorer.static_site import build_site

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "explore")
    build_site(out)
    for folder, _, files in os.walk(out):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as src:
                data = src.read()
            if name == "index.html":
                data = data.replace(b'href="vendor/LICENSES.md"', b'href="vendor/LICENSES/"')
            with mkdocs_gen_files.open(os.path.join("explore", os.path.relpath(path, out)), "wb") as dst:
                dst.write(data)
