"""musicvae_xai: explainable measure-level music VAEs (MeasureVAE and an adversarial Fader-style VAE).

Data flows one way: readers -> representation -> datasets -> models -> training -> export ->
serving clients -> evaluation, analysis, explorer, study.
"""

from musicvae_xai._quiet import quiet_startup

quiet_startup()

#: The release; pyproject.toml reads it from here (single source), CHANGELOG.md lists what each brought.
__version__ = "0.1.0"
