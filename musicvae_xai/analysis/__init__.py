"""Analysis of a trained run (docs/METHOD.md section 7): latent traversals, attribute surface maps, the encoded
data in the plane of two controls, regularised against free dims; MIDI of every traversal and an
``index.html`` with captions. ``python -m musicvae_xai.analysis --run_dir=DIR --output_dir=DIR``.

``figures`` draws (matplotlib, Agg) from numpy arrays; ``report`` computes what to draw from a run
through ``musicvae_xai.explain`` and writes the files. ``run_analysis``, ``AnalysisOptions`` and
``AnalysisError`` are importable from here (loaded on first use, so the command line starts quietly).
"""

_EXPORTS = ("AnalysisError", "AnalysisOptions", "run_analysis")
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        from musicvae_xai.analysis import report
        return getattr(report, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
