"""``python -m musicvae_xai.evaluate``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.evaluate`` (``musicvae-evaluate``), re-exported here."""

from musicvae_xai.cli.evaluate import main, run  # noqa: F401

if __name__ == "__main__":
    run()
