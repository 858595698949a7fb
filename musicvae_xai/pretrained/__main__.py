"""``python -m musicvae_xai.pretrained``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.pretrained`` (``musicvae-pretrained``), re-exported here."""

from musicvae_xai.cli.pretrained import main, run  # noqa: F401

if __name__ == "__main__":
    run()
