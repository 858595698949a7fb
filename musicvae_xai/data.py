"""``python -m musicvae_xai.data``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.data`` (``musicvae-data``), re-exported here."""

from musicvae_xai.cli.data import main, run  # noqa: F401

if __name__ == "__main__":
    run()
