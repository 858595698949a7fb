"""``python -m musicvae_xai.train``: kept so existing command lines keep working; the command is
``musicvae_xai.cli.train`` (``musicvae-train``), re-exported here."""

from musicvae_xai.cli.train import config_from_flags, define_config_flags, main, run  # noqa: F401

if __name__ == "__main__":
    run()
