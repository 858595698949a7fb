"""Writes the command-line reference into the documentation site as it is built (mkdocs-gen-files runs this
script; mkdocs.yml names it): ``reference/cli/index.md`` and one page per console script, generated from the
flags each command defines (``musicvae_xai.cli.reference``), so the pages cannot drift from the commands."""

import mkdocs_gen_files

from musicvae_xai.cli import reference

commands = reference.all_commands()
with mkdocs_gen_files.open("reference/cli/index.md", "w") as f:
    f.write(reference.markdown_index())
for script in commands:
    with mkdocs_gen_files.open(f"reference/cli/{script}.md", "w") as f:
        f.write(reference.markdown_page(script))
