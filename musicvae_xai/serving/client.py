"""``python -m musicvae_xai.serving.client``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.serve_client`` (``musicvae-serve-client``), re-exported here."""

from musicvae_xai.cli.serve_client import main, run  # noqa: F401

if __name__ == "__main__":
    run()
