"""``python -m musicvae_xai.analysis``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.analysis`` (``musicvae-analysis``), re-exported here."""

from musicvae_xai.cli.analysis import main, run  # noqa: F401

if __name__ == "__main__":
    run()
