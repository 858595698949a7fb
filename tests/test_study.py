"""The study runner: grid expansion and validation, a tiny grid end to end (resume, an interrupted
configuration, a crashing one), per-configuration commands, and the report with its findings."""

import dataclasses
import glob
import json
import os
import pathlib
import sys
import textwrap

import numpy as np
import pytest

from musicvae_xai.study import findings, grid, stats
from musicvae_xai.study.commands import emit_commands, slurm_path
from musicvae_xai.study.report import (NOTES_FILENAME, _baseline_section, _notes_lines, _summary_rows,
                                       build_markdown)

REPO = pathlib.Path(__file__).resolve().parents[1]
NAMES = ["measure_vae-z004-embedded-a2-s0", "measure_vae-z006-embedded-a2-s0", "measure_vae-z008-embedded-a2-s0"]


def write_study(path, cache_dir, extra="", latent_sizes="4,6,8"):
    path.write_text(textwrap.dedent(f"""\
        # A tiny study: three configurations (one GRU layer, no piano-roll summaries), four steps each, on the
        # embedded dataset.
        --models=measure_vae
        --latent_sizes={latent_sizes}
        --datasets=embedded
        --attribute_set=two
        --seeds=0
        --hidden_size=16
        --embedding_dim=4
        --num_layers=1
        --discriminator_hidden=16
        --batch_size=32
        --train_steps=4
        --checkpoint_every=2
        --eval_every=1000
        --notranspose
        --xla=false
        --cache_dir={cache_dir}
        --eval_max_measures=100
        --eval_sweep_measures=8
        --eval_sweep_steps=3
        --threads_per_config=1
        --noverify_export
        --noeval_summaries
        """) + extra)
    return path


def run_main(capsys, *args):
    """The study command line in this process (no interpreter start-up): (exit code, stdout, stderr)."""
    from absl import flags
    from musicvae_xai.study import __main__ as cli

    argv = ["study", *map(str, args)]
    flags.FLAGS.unparse_flags()
    rest = flags.FLAGS(argv)
    code = 0
    try:
        cli.main(rest)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if not isinstance(e.code, int) and e.code is not None:
            sys.stderr.write(str(e.code) + "\n")
    finally:
        flags.FLAGS.unparse_flags()
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("study_cache")


# ------------------------------------------------------------------------------------------------
# Study files and the grid (no training)


def test_study_file_expands_base_flagfile_overrides_and_names(tmp_path):
    base = tmp_path / "base.flags"
    base.write_text("--model=adversarial_vae\n--hidden_size=64\n--learning_rate=0.01\n--run_dir=ignored\n"
                    "--allow_cut_time\n")
    study = tmp_path / "s.flags"
    study.write_text(f"--base_flagfile={base}\n--models=measure_vae,adversarial_vae\n--latent_sizes=8,16\n"
                     "--datasets=embedded,pop\n--attribute_set=two\n--attribute_set=four\n--seeds=0,1\n"
                     "--hidden_size=32\n--override=dataset=pop:allow_cut_time=false\n"
                     "--override=model=adversarial_vae,attributes=4:learning_rate=0.5\n--eval_max_measures=50\n")
    spec = grid.load_study(str(study))
    entries = grid.expand(spec, str(tmp_path / "d"))
    assert len(entries) == 2 * 2 * 2 * 2 * 2
    by = {e.name: e.config for e in entries}
    assert len(by) == len(entries)
    first = entries[0]
    assert first.name == "measure_vae-z008-embedded-a2-s0"
    assert first.config.run_dir == os.path.join(str(tmp_path / "d"), first.name)
    assert first.config.hidden_size == 32  # the study file overrides the base flagfile
    assert first.config.learning_rate == 0.01  # from the base flagfile
    assert by["measure_vae-z008-embedded-a2-s0"].allow_cut_time is True
    assert by["measure_vae-z008-pop-a2-s0"].allow_cut_time is False
    assert by["adversarial_vae-z016-pop-a4-s1"].learning_rate == 0.5
    assert by["adversarial_vae-z016-pop-a2-s1"].learning_rate == 0.01
    assert by["measure_vae-z016-pop-a4-s1"].attributes == ("rhythmic_complexity", "note_range", "note_density",
                                                           "average_interval_jump")
    assert spec.evaluation_options()["max_measures"] == 50
    chosen = grid.select(entries, "adversarial_vae-*-pop-a4-*,measure_vae-z008-embedded-a2-s0")
    # seeds outermost: the whole grid of seed 0 comes before any seed 1
    assert [e.name for e in chosen] == ["measure_vae-z008-embedded-a2-s0", "adversarial_vae-z008-pop-a4-s0",
                                        "adversarial_vae-z016-pop-a4-s0", "adversarial_vae-z008-pop-a4-s1",
                                        "adversarial_vae-z016-pop-a4-s1"]
    assert [e.config.seed for e in entries] == [0] * 16 + [1] * 16
    with pytest.raises(grid.StudyError, match="matches no configuration"):
        grid.select(entries, "nothing-*")


@pytest.mark.parametrize("line, message", [
    ("--models=measure_vae,transformer_vae", "transformer_vae-z004-embedded-a2-s0: unknown model 'transformer_vae'"),
    ("--datasets=embedded,jazz", "measure_vae-z004-jazz-a2-s0: unknown dataset 'jazz'"),
    ("--attribute_set=rhythmic_complexity,loudness", "measure_vae-z004-embedded-a-rc-loudness-s0: unknown attribute"),
    ("--latent_sizes=2", "measure_vae-z002-embedded-a4-s0: latent_dim=2 is smaller than the 4 regularised"),
])
def test_bad_grid_entries_are_rejected_naming_the_entry(tmp_path, line, message):
    study = tmp_path / "bad.flags"
    study.write_text("--models=measure_vae\n--latent_sizes=4\n--datasets=embedded\n--attribute_set=two\n"
                     + ("--attribute_set=four\n" if "latent_sizes" in line else "") + line + "\n")
    with pytest.raises(grid.StudyError, match="bad grid entry") as info:
        grid.expand(grid.load_study(str(study)), str(tmp_path / "d"))
    assert message in str(info.value)


def test_bad_study_file_lines_name_file_and_line(tmp_path):
    for text, message in [("--hidden_sise=3\n", "bad.flags:1: unknown flag --hidden_sise"),
                          ("--models=measure_vae\n--hidden_size=big\n", "bad.flags:2: --hidden_size=big is not"),
                          ("--latent_dim=3\n", "bad.flags:1: --latent_dim is set by the grid"),
                          ("--override=dataset=pop:latent_dim=3\n", "cannot set latent_dim"),
                          ("--override=genre=pop:beta=1\n", "selector 'genre=pop'"),
                          ("hidden_size=3\n", "bad.flags:1: expected --key=value"),
                          ("--base_flagfile=/nonexistent.flags\n", "flagfile /nonexistent.flags does not exist")]:
        study = tmp_path / "bad.flags"
        study.write_text(text)
        with pytest.raises(grid.StudyError) as info:
            grid.load_study(str(study))
        assert message in str(info.value), (text, str(info.value))


def test_cli_rejects_a_bad_grid_before_anything_runs(tmp_path, cache_dir, capsys):
    study = write_study(tmp_path / "s.flags", cache_dir, extra="--datasets=embedded,nowhere\n")
    code, _, err = run_main(capsys, f"--study={study}", f"--study_dir={tmp_path / 'd'}")
    assert code != 0
    assert "measure_vae-z004-nowhere-a2-s0: unknown dataset 'nowhere'" in err
    assert not (tmp_path / "d").exists()
    code, _, err = run_main(capsys, "frobnicate", f"--study={study}", f"--study_dir={tmp_path / 'd'}")
    assert code != 0 and "unknown command 'frobnicate'" in err


def test_emit_commands_writes_one_command_per_configuration_and_a_slurm_array(tmp_path, cache_dir, capsys):
    study = write_study(tmp_path / "s.flags", cache_dir)
    out = tmp_path / "cluster" / "commands.txt"
    code, stdout, err = run_main(capsys, f"--study={study}", f"--study_dir={tmp_path / 'd'}",
                                 f"--emit_commands={out}", "--only=*-z004-*,*-z008-*")
    assert code == 0, err
    assert "wrote 2 command(s)" in stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    assert f"--only={NAMES[0]}" in lines[0] and f"--only={NAMES[2]}" in lines[1]
    assert all(f"--study={study}" in ln and f"--study_dir={tmp_path / 'd'}" in ln for ln in lines)
    script = pathlib.Path(slurm_path(str(out))).read_text()
    assert "#SBATCH --array=1-2" in script
    assert "--cpus-per-task=1" in script
    assert f'sed -n "${{SLURM_ARRAY_TASK_ID}}p" {out}' in script
    assert "musicvae_xai.study prepare" in script
    assert not (tmp_path / "d").exists()  # emitting runs nothing
    with pytest.raises(ValueError):
        emit_commands([], str(tmp_path / "x.txt"), str(study), "d")


# ------------------------------------------------------------------------------------------------
# A tiny grid end to end


@pytest.mark.slow
def test_tiny_grid_runs_resumes_records_failures_and_reports(tmp_path, cache_dir, capsys):
    from musicvae_xai.config import RunConfig
    from musicvae_xai.training import checkpoints
    from musicvae_xai.training.loop import Trainer

    # The third configuration crashes: a batch larger than the training split.
    study = write_study(tmp_path / "s.flags", cache_dir, extra="--override=latent_dim=8:batch_size=100000\n")
    study_dir = tmp_path / "study"
    entries = grid.expand(grid.load_study(str(study)), str(study_dir))
    assert [e.name for e in entries] == NAMES

    # An interrupted first configuration: two of its four steps done, no FINISHED marker.
    partial = dataclasses.replace(entries[0].config, train_steps=2)
    Trainer(partial, progress=False).run()
    os.remove(os.path.join(partial.run_dir, checkpoints.FINISHED_FILENAME))

    # The runner in this process (its workers are processes of their own).
    code, out, err = run_main(capsys, f"--study={study}", f"--study_dir={study_dir}", "--parallel=2",
                              "--status_every=5")
    assert code == 1, out + err  # one configuration failed
    assert "3 configuration(s): 0 already done, 3 to run, 2 at a time with 1 thread(s) each" in out
    assert "ETA" in out and "remaining" in out
    assert f"FAILED {NAMES[2]} (train)" in out
    results = {n: json.loads((study_dir / n / "result.json").read_text()) for n in NAMES}
    for name in NAMES[:2]:
        r = results[name]
        assert r["status"] == "ok", r
        assert r["grid"]["latent_dim"] == int(name[len("measure_vae-z"):][:3])
        assert RunConfig.from_dict(r["flags"]).train_steps == 4
        m = r["metrics"]
        for key in ("token_accuracy", "note_accuracy", "kl_per_measure", "interpretability_mean", "mig", "sap",
                    "scc", "modularity", "controllability", "leakage"):
            assert isinstance(m[key], float), key
        assert 0.0 <= m["token_accuracy"] <= 1.0
        assert r["training"]["steps"] == 4
        assert r["throughput"]["measures_per_second"] > 0
        assert r["wall_seconds"]["total"] > 0 and r["cpu_seconds"]["total"] > 0
        assert r["threads"] == 1
        assert 0.5 < r["baselines"]["validation"]["majority_token_accuracy"] < 1.0
        # and the baselines on exactly the measures the run was scored on
        assert m["baselines"]["measures"] == m["num_measures"] and 0.5 < m["baselines"]["majority_token_accuracy"] < 1
        assert (study_dir / "exports" / name / "1" / "saved_model.pb").is_file()
        assert glob.glob(str(study_dir / name / "hparams" / "events.out.tfevents.*")) and "hparams_error" not in r
    assert results[NAMES[0]]["training"]["resumed_from_step"] == 2
    assert results[NAMES[1]]["training"]["resumed_from_step"] == 0
    failed = results[NAMES[2]]
    assert failed["status"] == "failed" and failed["stage"] == "train"
    assert "fewer than one batch" in failed["error"]
    status = json.loads((study_dir / "status.json").read_text())
    assert sorted(status["ok"]) == NAMES[:2] and status["failed"] == [NAMES[2]] and not status["remaining"]

    # Second run: finished configurations are skipped, the failed one is retried (and fails again).
    mtimes = [(study_dir / n / "result.json").stat().st_mtime for n in NAMES[:2]]
    code, out, err = run_main(capsys, f"--study={study}", f"--study_dir={study_dir}", "--parallel=2")
    assert code == 1 and "3 configuration(s): 2 already done, 1 to run" in out, out + err
    assert f"FAILED {NAMES[2]} (train)" in out
    assert [(study_dir / n / "result.json").stat().st_mtime for n in NAMES[:2]] == mtimes
    code, out, err = run_main(capsys, f"--study={study}", f"--study_dir={study_dir}", "--noretry_failed")
    assert code == 0 and "3 already done, 0 to run" in out, out + err

    # The report.
    output = tmp_path / "docs" / "RESULTS.md"
    code, out, err = run_main(capsys, "report", f"--study_dir={study_dir}", f"--output={output}")
    assert code == 0 and "wrote" in out, err
    text = output.read_text()
    assert "**2 of 3 trainings have results** (configurations x seeds; seeds 0), 1 failed, 0 have not been run" \
        in text
    assert f"`{NAMES[2]}` failed in train" in text
    assert "### MeasureVAE · embedded · 2 attributes" in text
    table = text.split("### MeasureVAE · embedded · 2 attributes")[1]
    assert "| 4 |" in table and "| 6 |" in table
    token_acc = results[NAMES[0]]["metrics"]["token_accuracy"]
    assert f"| 4 | 1 | {token_acc:.3f} |" in table  # latent, n seeds, mean (no sd for one seed)
    for number in (1, 2, 4):
        assert f"### {number}." in text
    assert text.count("**Verdict: inconclusive.**") == 4  # one model, one dataset, two latent sizes
    assert "majority-token acc." in text
    figures = output.parent / "RESULTS_figures"
    assert (figures / "token_accuracy.png").stat().st_size > 1000
    assert "![Recon. acc. against latent size](RESULTS_figures/token_accuracy.png)" in text


def test_worker_that_dies_without_a_result_is_recorded_as_failed(tmp_path, cache_dir):
    from musicvae_xai.study.runner import StudyRunner

    study = write_study(tmp_path / "s.flags", cache_dir, latent_sizes="4")
    spec = grid.load_study(str(study))
    entries = grid.expand(spec, str(tmp_path / "d"))
    lines = []
    crash = [sys.executable, "-c", "import sys; print('RuntimeError: segfault-like crash'); sys.exit(139)"]
    summary = StudyRunner(spec, entries, str(tmp_path / "d"), log=lines.append, worker_argv=lambda run_dir: crash,
                          poll_seconds=0.05).run()
    assert summary["failed"] == [NAMES[0]] and summary["ok"] == []
    result = json.loads((tmp_path / "d" / NAMES[0] / "result.json").read_text())
    assert result["status"] == "failed" and result["stage"] == "worker"
    assert "status 139" in result["error"] and "segfault-like crash" in result["error"]
    assert any(f"FAILED {NAMES[0]}" in ln for ln in lines)


# ------------------------------------------------------------------------------------------------
# The findings on synthetic results (no training)


def _record(model, dataset, latent, attrs=2, seed=0, **metrics):
    names = ["rhythmic_complexity", "note_range", "note_density", "average_interval_jump"][:attrs]
    return {"status": "ok", "name": f"{model}-z{latent:03d}-{dataset}-a{attrs}-s{seed}",
            "grid": {"model": model, "dataset": dataset, "latent_dim": latent, "attributes": names, "seed": seed},
            "metrics": metrics}


def test_wilcoxon_p_value_matches_scipy():
    from scipy import stats as sps

    diffs = [0.012, -0.004, 0.020, 0.031, 0.007, -0.011, 0.015, 0.026, 0.003, 0.018]
    assert stats.wilcoxon_p(diffs) == pytest.approx(sps.wilcoxon(diffs).pvalue)
    assert stats.wilcoxon_p(diffs) == pytest.approx(0.02734375)  # exact two-sided p: 28 of 1024 sign patterns
    assert stats.wilcoxon_p([0.0, 0.0, 0.0]) is None and stats.wilcoxon_p([0.1]) is None
    e = stats.paired_effect([[0.9 + d] for d in diffs], [[0.9]] * len(diffs))
    assert e.p_value == pytest.approx(0.02734375) and e.estimate == pytest.approx(np.mean(diffs))


def test_baseline_section_compares_test_accuracies_with_test_baselines():
    baseline = {"validation": {"majority_token_accuracy": 0.50}, "test": {"majority_token_accuracy": 0.64}}
    records = []
    for z, acc in ((4, 0.65), (8, 0.66), (16, 0.90), (32, 0.63)):
        r = _record("adversarial_vae", "pop", z, token_accuracy=acc, note_accuracy=0.1)
        r.update(training={"val_token_accuracy": 0.99}, baselines=baseline, evaluation_options={"split": "test"})
        records.append(r)
    for ds in ("irish", "turkish", "classical", "pop", "embedded"):  # more groups than a short list shows
        for z in range(1, 6):
            r = _record("measure_vae", ds, z, token_accuracy=0.5, note_accuracy=0.1)
            r.update(training={"val_token_accuracy": 0.99}, baselines=baseline)
            records.append(r)
    text = "\n".join(_baseline_section(records))
    assert "Baselines and model accuracies are on the same split, `test`" in text
    assert "28 training(s) did not beat" in text  # 3 adversarial (z16 learned) + 25 measure, against 0.64
    assert "| AdversarialVAE | pop | 2 | 4 s0, 8 s0, 32 s0 | 0.630 – 0.660 | 0.640 |" in text
    for ds in ("irish", "turkish", "classical", "pop", "embedded"):
        assert f"| MeasureVAE | {ds} | 2 | 1 s0, 2 s0, 3 s0, 4 s0, 5 s0 | 0.500 – 0.500 | 0.640 |" in text
    assert text.index("| MeasureVAE | irish") < text.index("| MeasureVAE | pop") < text.index("| AdversarialVAE")
    assert "scored on the whole `test` split" in text and "(whole split)" not in text  # no measure count given
    # a result that carries the baselines of its evaluated measures: those are used, per run and per dataset
    records[0]["metrics"]["baselines"] = {"majority_token": "hold", "majority_token_accuracy": 0.66,
                                          "measures": 1000}
    text = "\n".join(_baseline_section(records))
    assert "| pop | `hold` | 1,000 evaluated | 0.660 |" in text
    assert "Where the results carry them, baselines are scored on exactly the measures" in text
    assert "| AdversarialVAE | pop | 2 | 4 s0, 8 s0, 32 s0 | 0.630 – 0.660 | 0.640 |" not in text  # 4 s0 vs 0.66
    assert "| AdversarialVAE | pop | 2 | 8 s0, 32 s0 | 0.630 – 0.660 | 0.640 |" in text
    assert "| AdversarialVAE | pop | 2 | 4 s0 | 0.650 – 0.650 | 0.660 |" in text


def test_majority_baselines_count_note_accuracy_over_pitch_and_rest_targets():
    from musicvae_xai.representation import Vocabulary
    from musicvae_xai.study.runner import majority_baselines

    vocab = Vocabulary(60, 63)  # pitches 0..3, rest 4, hold 5, start 6, end 7
    h, r, st = vocab.hold_id, vocab.rest_id, vocab.start_id
    train = np.array([[0] + [h] * 23, [1] + [h] * 23, [0] + [h] * 23])
    test = np.array([[0] + [h] * 11 + [r] + [h] * 11, [st] * 12 + [2] + [h] * 11])

    class Built:
        vocabulary = vocab

        def tokens(self, split):
            return {"train": train, "validation": train, "test": test}[split]

    b = majority_baselines(Built())
    t = b["test"]
    assert b["majority_token"] == "hold" and b["train_measures"] == 3
    assert t["majority_token_accuracy"] == pytest.approx(33 / 48)
    assert t["majority_note_accuracy"] == 0.0  # hold is never a pitch or rest target
    # per tick: tick 0 predicts pitch 0 (hit on the first measure; the second's tick 0 is start, not counted)
    assert t["per_tick_majority_note_accuracy"] == pytest.approx(1 / 3)  # targets: 0, rest, pitch 2
    assert t["note_fraction"] == pytest.approx(3 / 48) and t["hold_fraction"] == pytest.approx(33 / 48)
    assert b["validation"]["measures"] == 3


def test_cpu_v2_preset_gives_every_genre_the_same_epochs():
    spec = grid.load_study(str(REPO / "musicvae_xai" / "configs" / "study" / "cpu_v2.flags"))
    entries = grid.expand(spec, "/tmp/unused", known_datasets=["pop", "irish", "turkish", "classical"])
    assert len(entries) == 336 and {e.config.seed for e in entries} == {0, 1, 2}
    assert entries[0].name.endswith("-s0") and entries[-1].name.endswith("-s2")
    # augmented training-split sizes (pitches 55..84, transposed), as in the preset's table
    train = {"pop": 470_579, "irish": 263_785, "turkish": 111_521, "classical": 90_411}
    epochs = {e.config.dataset: e.config.train_steps * e.config.batch_size / train[e.config.dataset] for e in entries}
    assert all(abs(v - 0.6) < 0.001 for v in epochs.values()), epochs
    assert {e.config.lambda_kl for e in entries if e.config.model == "adversarial_vae"} == {0.1}  # no override
    # the reference discriminator for the AdversarialVAE (MeasureVAE has none; its 256 is inert)
    assert {e.config.discriminator_hidden for e in entries if e.config.model == "adversarial_vae"} == {0}
    assert not any(f == "lambda_kl" for _, f, _ in spec.overrides)


def test_authors_preset_is_adversarial_vae_as_its_authors_ran_it():
    spec = grid.load_study(str(REPO / "musicvae_xai" / "configs" / "study" / "authors.flags"))
    entries = grid.expand(spec, "/tmp/unused", known_datasets=["pop", "irish", "turkish", "classical"])
    assert len(entries) == 168 and {e.config.model for e in entries} == {"adversarial_vae"}
    for e in entries:
        c = e.config.validate()
        # RadixBupleuri/VAEs env.yml: 50,000 iterations of batch 64, hidden 1024, Adam 1e-4, lambdas 0.1, 8 classes
        assert (c.train_steps, c.batch_size, c.hidden_size, c.learning_rate) == (50_000, 64, 1024, 1e-4)
        assert (c.lambda_d, c.lambda_kl, c.num_bins, c.sampling_k) == (0.1, 0.1, 8, 1000.0)
        # train_AdversarialVAE.py: the decoder is fed the bin classes, and the VAE step encodes again
        assert (c.attribute_input, c.discriminator_z) == ("classes", "fresh")
        assert (c.adversarial_encoder_layers, c.discriminator_layers, c.discriminator_hidden) == (1, 2, 0)


def test_every_line_of_the_paper_preset_says_where_its_value_comes_from():
    path = REPO / "musicvae_xai" / "configs" / "study" / "paper.flags"
    lines = path.read_text().splitlines()
    tags = ("[paper]", "[authors]", "[fader]", "[ours]")
    block: list = []
    for line in lines:
        if not line.strip():
            block = []
        elif line.startswith("#"):
            block.append(line)
        else:  # a flag: the comment block above it names its source
            assert any(t in " ".join(block) for t in tags), line
    text = path.read_text()
    assert "does not publish its training settings" in text and "ar-vae's defaults agree except hidden 128" in text
    assert len(grid.expand(grid.load_study(str(path)), "/tmp/unused",
                           known_datasets=["pop", "irish", "turkish", "classical"])) == 336


def test_partial_grid_report_states_coverage_and_seeds_per_cell(tmp_path):
    gen = np.random.default_rng(0)
    expected, records = [], []
    for s in (0, 1, 2):
        for model in ("measure_vae", "adversarial_vae"):
            for z in (8, 16, 32):
                name = f"{model}-z{z:03d}-pop-a2-s{s}"
                g = {"model": model, "dataset": "pop", "latent_dim": z, "seed": s,
                     "attributes": ["rhythmic_complexity", "note_range"]}
                expected.append({"name": name, **g})
                if s == 2 or (s == 1 and z == 32):
                    continue  # not run yet
                metrics = {k: float(gen.uniform(0.3, 0.9)) for k in ("token_accuracy", "note_accuracy", "leakage",
                                                                      "interpretability_mean", "mig")}
                records.append({"status": "ok", "name": name, "grid": g, "metrics": metrics,
                                "evaluation_options": {"split": "test"}})
    records.append({"status": "failed", "name": "measure_vae-z032-pop-a2-s1", "grid": expected[8],
                    "stage": "train", "error": "boom"})
    text = build_markdown(records, expected, {}, "figs", str(tmp_path))
    assert "**10 of 18 trainings have results** (configurations x seeds; seeds 0, 1, 2), 1 failed, 7 have not" in text
    assert "The report works with a partial grid" in text
    assert "| MeasureVAE | pop | 2 | 8 (2), 16 (2), 32 (1) | 32 s1 | 8 s2, 16 s2, 32 s2 |" in text
    assert "**Caution:** 8 of the 18 trainings have no result" in text
    table = text.split("### MeasureVAE · pop · 2 attributes")[1].split("###")[0]
    assert "| 8 | 2 |" in table and "| 32 | 1 |" in table and " ± " in table  # mean ± sd for 2 seeds
    row32 = [ln for ln in table.splitlines() if ln.startswith("| 32 |")][0]
    assert " ± " not in row32  # one seed: the mean alone
    # finding 1 on the partial pairs: one genre, so inconclusive by the genre rule, with its effective n
    assert "n = 1 genre x 3 configurations x 1-2 seeds" in text and "needs all 4 genres" in text
    assert "| # | claim | effect | 95% CI | genres agreeing | p | Holm p | verdict |" in text
    assert "Holm-corrected" in text and "tests the Holm correction runs over" in text


def test_findings_table_gives_each_part_of_a_two_part_finding_its_own_row():
    def effect(estimate, lo, hi, verdict, p_holm=0.02):
        return stats.Effect(estimate, (lo, hi), 0.01, 56, (2, 2), verdict, stats.HIERARCHICAL, 4, 4, (14, 14),
                            0.125, p_holm).to_dict()

    one = findings.Finding(1, "claim one", "contradicted", "", [], {"effect": effect(-0.03, -0.04, -0.02,
                                                                                         "contradicted")})
    # Part (a) straddles zero, part (b) is above it: the finding is inconclusive, and the table must show the
    # part that makes it so, not only the supported one.
    three = findings.Finding(3, "claim three", "inconclusive", "", [],
                             {"part_a": effect(0.003, -0.001, 0.007, "inconclusive"),
                              "part_b": {**effect(0.051, 0.040, 0.062, "supported", 0.07), "closest_genre": "irish"}})
    unassessed = findings.Finding(3, "claim three", "inconclusive", "", [],
                                  {"part_a": effect(0.1, 0.05, 0.15, "supported"), "part_b": None})
    rows = _summary_rows([one, three])
    assert rows[0] == [1, "claim one", "-0.030", "[-0.040, -0.020]", "4 of 4", "0.01", "0.02", "**contradicted**"]
    assert rows[1] == [3, "claim three", "+0.003", "[-0.001, +0.007]", "4 of 4", "0.01", "0.02",
                       "**inconclusive** (part (a): inconclusive)"]
    # a verdict whose Holm-adjusted p is 0.05 or more is marked
    assert rows[2] == ["", "", "+0.051", "[+0.040, +0.062]", "4 of 4", "0.01", "0.07", "part (b): supported †"]
    assert _summary_rows([unassessed])[1] == ["", "", "–", "–", "–", "–", "–", "part (b): not assessed"]


def test_hparams_are_logged_and_read_back(tmp_path):
    from tensorboard_events import hparams_session

    from musicvae_xai.study.hparams import HPARAMS_DIRNAME, write_hparams

    info = {"models": ["measure_vae", "adversarial_vae"], "latent_sizes": [8, 32], "datasets": ["pop"],
            "attribute_sets": [["rhythmic_complexity", "note_range"]], "seeds": [0, 1, 2]}
    fakes = {"measure_vae-z008-pop-a2-s0": ("measure_vae", 8, 0, 0.81),
             "adversarial_vae-z032-pop-a2-s1": ("adversarial_vae", 32, 1, 0.77)}
    for name, (model, z, seed, acc) in fakes.items():
        result = {"status": "ok", "name": name, "metrics": {"token_accuracy": acc, "leakage": 0.3, "mig": -0.01},
                  "grid": {"model": model, "dataset": "pop", "latent_dim": z, "seed": seed,
                           "attributes": ["rhythmic_complexity", "note_range"]},
                  "flags": {"hidden_size": 64, "learning_rate": 3e-3, "train_steps": 4412, "lambda_kl": 0.1},
                  "training": {"steps": 4412, "val_token_accuracy": acc + 0.01}}
        write_hparams(str(tmp_path / name / HPARAMS_DIRNAME), result, info)
        write_hparams(str(tmp_path / name / HPARAMS_DIRNAME), result, info)  # a rewrite replaces, not adds
    for name, (model, z, seed, acc) in fakes.items():
        session, experiment, scalars = hparams_session(tmp_path / name)
        assert experiment is not None
        sessions, experiments = [session], [experiment]
        hp = sessions[0].hparams
        assert sessions[0].group_name == name
        assert hp["model"].string_value == model and hp["latent_dim"].number_value == z
        assert hp["seed"].number_value == seed and hp["attributes"].string_value == "a2"
        assert hp["learning_rate"].number_value == pytest.approx(3e-3) and hp["lambda_kl"].number_value == 0.1
        assert scalars["final/token_accuracy"] == (pytest.approx(acc), 4412)
        assert scalars["final/mig"][0] == pytest.approx(-0.01)
        assert scalars["final/val_token_accuracy"][0] == pytest.approx(acc + 0.01)
        infos = {h.name: h for h in experiments[0].hparam_infos}
        assert [v.number_value for v in infos["latent_dim"].domain_discrete.values] == [8, 32]
        assert [v.number_value for v in infos["seed"].domain_discrete.values] == [0, 1, 2]
        assert "final/token_accuracy" in {m.name.tag for m in experiments[0].metric_infos}


def test_report_names_overrides_and_includes_the_study_folders_notes(tmp_path):
    records = [_record("measure_vae", "pop", 8, token_accuracy=0.8, note_accuracy=0.4),
               _record("adversarial_vae", "pop", 8, token_accuracy=0.7, note_accuracy=0.3)]
    info = {"path": "configs/study/x.flags", "models": ["measure_vae", "adversarial_vae"], "latent_sizes": [8],
            "datasets": ["pop"], "attribute_sets": [["rhythmic_complexity", "note_range"]], "seeds": [0],
            "overrides": [{"field": "lambda_kl", "value": 0.004, "when": {"model": "adversarial_vae"}}]}
    assert _notes_lines(str(tmp_path)) == []
    text = build_markdown(records, [], {}, "figs", str(tmp_path), study_info=info, notes=_notes_lines(str(tmp_path)))
    assert "`lambda_kl=0.004` where model=adversarial_vae" in text and "Notes on this run" not in text
    assert "Study file: `configs/study/x.flags`" in text
    # A packaged study file run from a worktree or an installed package is named by its repository path.
    packaged = dict(info, path="/work/study-run/musicvae_xai/configs/study/cpu_v2.flags")
    text = build_markdown(records, [], {}, "figs", str(tmp_path), study_info=packaged)
    assert "Study file: `musicvae_xai/configs/study/cpu_v2.flags`" in text and "/work/" not in text
    (tmp_path / NOTES_FILENAME).write_text("lambda_kl was lowered because **reasons**.\n")
    text = build_markdown(records, [], {}, "figs", str(tmp_path), study_info=info, notes=_notes_lines(str(tmp_path)))
    assert "## Notes on this run" in text and "lambda_kl was lowered because **reasons**." in text
    assert text.index("## What was run") < text.index("## Notes on this run") < text.index("## Coverage")


def test_scale_section_states_the_genre_gap_and_hidden_size_of_these_results():
    from musicvae_xai.study import scale

    records = [dict(_record("measure_vae", ds, z, interpretability_mean=v), flags={"hidden_size": 64})
               for ds, v in (("pop", 0.95), ("irish", 0.90), ("classical", 0.50)) for z in (8, 16)]
    records.append(dict(_record("adversarial_vae", "pop", 8, interpretability_mean=0.1), flags={"hidden_size": 64}))
    assert scale.closest_genre_gap(records) == pytest.approx(0.05)  # pop - irish; AdversarialVAE ignored
    text = "\n".join(scale.scale_section(records))
    assert "closest two genres here differ by 0.050" in text and "hidden-64 GRU" in text
    assert scale.closest_genre_gap(records[:2]) is None  # one genre


def test_study_evaluation_options_are_those_of_evaluation_options():
    """Every EvaluationOptions field but the per-run ones is a study key ``eval_<field>`` with the same
    default; a field added to EvaluationOptions alone fails here."""
    from musicvae_xai.config import EvaluationOptions

    defaults = {f.name: f.default for f in dataclasses.fields(EvaluationOptions)}
    assert set(defaults) - set(grid.EVALUATION_FIELDS) == {"cache_dir", "data_root", "expect_finished"}
    spec_fields = {f.name: f.default for f in dataclasses.fields(grid.StudySpec) if f.name.startswith("eval_")}
    assert spec_fields == {f"eval_{name}": defaults[name] for name in grid.EVALUATION_FIELDS}
    assert all(f"eval_{name}" in grid.STUDY_KEYS for name in grid.EVALUATION_FIELDS)
    spec = grid.StudySpec(path="x", eval_split="validation", eval_sweep_steps=5)
    assert EvaluationOptions(**spec.evaluation_options()).validate().sweep_steps == 5
