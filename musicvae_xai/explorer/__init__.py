"""Interactive latent-space explorer in the browser, for either model, in-process or against
TensorFlow Serving.

    python -m musicvae_xai.explorer --export=exports/irish            # in-process LocalModel
    python -m musicvae_xai.explorer --serving_url=http://localhost:8501 --model=irish --assets=exports/irish

Modules: ``model_info`` (vocabulary, attributes, controls of a served model), ``data`` (seed
measures, training sample, uploads), ``engine`` (``Explorer``: encode, decode, measure, pad
backgrounds, MIDI), ``app`` (the Flask app and JSON API), ``server`` (wiring and serving);
``static/`` holds the page (plain HTML/JS/CSS, Web Audio synthesis, no build step).

The static site (``musicvae-explorer --static=DIR``, docs/explorer_static.md) runs the model in the
browser instead: ``static_site`` builds it, ``weights`` names an export's weights, ``web/`` holds its page.
"""

from musicvae_xai.explorer.app import create_app
from musicvae_xai.explorer.engine import Explorer, ExplorerError
from musicvae_xai.explorer.server import make_explorer, serve

__all__ = ["Explorer", "ExplorerError", "create_app", "make_explorer", "serve"]
