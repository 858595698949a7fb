"""``python -m musicvae_xai.explorer``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.explorer`` (``musicvae-explorer``), re-exported here."""

from musicvae_xai.cli.explorer import main, run  # noqa: F401

if __name__ == "__main__":
    run()
