"""The study: the paper's grid of configurations, run, resumed, aggregated and tested against its findings.

    musicvae-study --study=cpu_v2 --study_dir=studies/cpu_v2 --parallel=2
    python -m musicvae_xai.study report --study_dir=studies/cpu_v2 --output=docs/RESULTS.md

Modules: ``grid`` (study files, grid expansion and validation), ``runner`` (dataset caches, parallel
worker processes, resume, progress), ``worker`` (one configuration: train, evaluate, export,
``result.json``), ``commands`` (per-configuration commands and a Slurm array script), ``results``
(reading and aggregating ``result.json`` files), ``stats`` (bootstrap intervals, Wilcoxon tests,
verdicts), ``findings`` (the paper's four findings), ``scale`` (the reduction from the paper's scale),
``figures`` and ``report`` (the markdown report), ``hparams`` (TensorBoard HParams of each
configuration). The command line is ``__main__``.
"""

from musicvae_xai.study.grid import Entry, StudyError, StudySpec, expand, load_study, select

__all__ = ["Entry", "StudyError", "StudySpec", "expand", "load_study", "select"]
