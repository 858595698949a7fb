"""``python -m musicvae_xai.study``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.study`` (``musicvae-study``), re-exported here."""

from musicvae_xai.cli.study import main, run  # noqa: F401

if __name__ == "__main__":
    run()
