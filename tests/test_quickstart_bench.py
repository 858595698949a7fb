"""bench/quickstart_bench.py reads the main job from the README: the two must stay in step."""

from __future__ import annotations

import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "quickstart_bench.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("quickstart_bench", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_main_job_is_the_four_commands_the_bench_times(bench):
    commands = bench.readme_commands()
    assert [c[0] for c in commands] == list(bench.STAGES)
    assert commands[0][1:] == ["--config=quickstart"]


def test_every_output_folder_moves_under_the_work_folder(bench, tmp_path):
    moved = [bench.relocate(c, str(tmp_path)) for c in bench.readme_commands()]
    paths = [a.split("=", 1)[1] for c in moved for a in c[1:] if a.split("=", 1)[0] in
             ("--run_dir", "--export_base", "--output_dir")]
    assert len(paths) == 6 and all(p.startswith(str(tmp_path)) for p in paths)


def test_a_readme_without_the_main_job_is_refused(bench, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```bash\npip install . && musicvae-train --config=quickstart\n```\n")
    with pytest.raises(ValueError, match="four expected commands"):
        bench.readme_commands(str(readme))
