"""The README and the documentation site quote command lines that work: every ``musicvae-*`` console script
and ``python -m musicvae_xai...`` module they name exists, and each is given only flags it accepts (read
from the absl flag definitions, most generated from the settings declarations; nothing is run). Also:
the site's navigation lists every command's page, and the version is single-sourced."""

from __future__ import annotations

import glob
import os
import re
import shlex

import pytest

import musicvae_xai
from musicvae_xai.cli import ENTRY_POINTS, reference

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Markdown a reader is pointed to: the README, every page of the site (and what the site includes).
DOCUMENTS = ["README.md", "CHANGELOG.md", "serving/README.md", "musicvae_xai/pretrained/README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "**", "*.md"), recursive=True))

_SCRIPT = re.compile(r"^musicvae-[a-z][a-z-]*$")
_SEPARATORS = {"&&", "||", "|", ";", "&", "(", ")", "`"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = {"sudo", "time", "env", "nohup", "exec", "do", "then", "else", "!"}
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def code_lines(text: str) -> list:
    """(line number, code) for every line of a fenced or indented code block, and every inline code
    span, of a markdown text; backslash-continued lines are joined."""
    out, lines, fenced, i = [], text.splitlines(), False, 0
    while i < len(lines):
        line, start = lines[i], i + 1
        if _FENCE.match(line):
            fenced = not fenced
            i += 1
            continue
        in_block = fenced or (line.startswith("    ") and not line.lstrip().startswith(("-", "*", "|")))
        if in_block:
            while line.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            out.append((start, line))
        else:
            out.extend((start, span) for span in _INLINE.findall(line))
        i += 1
    return out


def commands_in(code: str) -> list:
    """[(script, [args])] for every command of a line of code: a console script, or ``python -m M`` (then
    script is ``"-m M"``). Brackets of optional arguments (``[--split=test]``) are dropped."""
    lexer = shlex.shlex(code, posix=True, punctuation_chars="&|;()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote in prose: nothing to check
        return []
    found, current, at_start = [], None, True
    for i, token in enumerate(tokens):
        if token in _SEPARATORS:
            current, at_start = None, True
            continue
        if at_start and (_ASSIGNMENT.match(token) or token in _PREFIXES):
            continue  # VAR=value, sudo, time, do, ...: the command comes next
        if at_start and _SCRIPT.match(token):
            current = (token, [])
            found.append(current)
        elif at_start and re.match(r"^python3?$", os.path.basename(token)) and tokens[i + 1:i + 2] == ["-m"] \
                and tokens[i + 2:i + 3] and tokens[i + 2].startswith("musicvae_xai"):
            current = ("-m " + tokens[i + 2], [])
            found.append(current)
        elif current is not None and tokens[i - 1] != "-m":
            current[1].append(token.strip("[]"))
        at_start = False
    return found


def problems(script: str, args: list) -> list:
    """What is wrong with one quoted command: an unknown console script or module, or a flag it does not
    accept."""
    if script.startswith("-m "):
        module = script[3:]
        resolved = reference.script_of_module(module)
        if resolved is None:
            return [f"python -m {module}: no such command module"]
        script = resolved
    elif script not in ENTRY_POINTS:
        return [f"{script}: no such console script (known: {', '.join(ENTRY_POINTS)})"]
    bad = []
    for arg in args:
        if arg.startswith("--") and len(arg) > 2:
            name = arg[2:].split("=", 1)[0]
            if not reference.accepts(script, name):
                bad.append(f"{script}: no flag --{name}")
    return bad


def quoted_commands() -> list:
    """(document:line, script, args) for every command quoted in DOCUMENTS."""
    out = []
    for doc in DOCUMENTS:
        with open(os.path.join(REPO, doc), encoding="utf-8") as f:
            text = f.read()
        for number, code in code_lines(text):
            out.extend((f"{doc}:{number}", script, args) for script, args in commands_in(code))
    return out


@pytest.fixture(scope="module")
def all_flags():
    return reference.all_commands()  # every command's flags, read once, one interpreter per core


def test_every_quoted_command_exists_and_takes_only_its_flags(all_flags):
    quoted = quoted_commands()
    assert len(quoted) > 80 and len({s for _, s, _ in quoted}) >= 10  # the extraction finds the commands
    bad = [f"{where}: {p}" for where, script, args in quoted for p in problems(script, args)]
    assert not bad, "\n".join(bad)


def test_a_made_up_flag_or_command_is_caught(all_flags):
    markdown = ("```bash\nmusicvae-train --config=quickstart --latent_dim=8 --no_such_flag=1 && \\\n"
                "  musicvae-evaluate --run_dir=runs/x [--splitt=test]\n```\n"
                "Then `musicvae-explorer --noport` and `python -m musicvae_xai.serving.client --target=x --bogus`,\n"
                "`musicvae-trian --config=quickstart`, `python -m musicvae_xai.nothing --x=1`.\n"
                "    musicvae-export --run_dir=r --export_base=e --noverify\n")
    found = [problems(script, args) for _, code in code_lines(markdown) for script, args in commands_in(code)]
    assert found == [
        ["musicvae-train: no flag --no_such_flag"], ["musicvae-evaluate: no flag --splitt"],
        ["musicvae-explorer: no flag --noport"],  # --port is not boolean: no --noport
        ["musicvae-serve-client: no flag --bogus"],
        ["musicvae-trian: no such console script (known: " + ", ".join(ENTRY_POINTS) + ")"],
        ["python -m musicvae_xai.nothing: no such command module"],
        [],  # --noverify negates the boolean --verify
    ]


def test_flags_generated_from_settings_are_known_with_their_declaration(all_flags):
    train = all_flags["musicvae-train"].flags
    assert train["latent_dim"].setting == "musicvae_xai.config.RunConfig.latent_dim"
    assert train["init"].choices == ("reference", "keras")  # declared choices=INITS
    assert reference.accepts("musicvae-train", "noxla") and not reference.accepts("musicvae-train", "nolatent_dim")
    page = reference.markdown_page("musicvae-train")
    assert all(f"`--{f.name}`" in page for f in all_flags["musicvae-train"].own_flags())


def test_older_module_paths_resolve_to_their_command():
    assert reference.script_of_module("musicvae_xai.serving.client") == "musicvae-serve-client"
    assert reference.script_of_module("musicvae_xai.study.worker") is None  # a library module, no command
    assert reference.script_of_module("musicvae_xai.cli.train") == "musicvae-train"
    assert reference.script_of_module("musicvae_xai.metrics") is None


def test_every_console_script_is_declared_and_has_a_page_in_the_site_navigation():
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        scripts = re.findall(r'^(musicvae-[a-z-]+) = "musicvae_xai\.cli:', f.read(), re.M)
    assert sorted(scripts) == sorted(ENTRY_POINTS)
    with open(os.path.join(REPO, "mkdocs.yml"), encoding="utf-8") as f:
        nav = f.read()
    missing = [s for s in ENTRY_POINTS if f"reference/cli/{s}.md" not in nav]
    assert not missing, f"add to mkdocs.yml's nav: {missing}"


def test_the_version_is_single_sourced_and_starts_the_changelog():
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        pyproject = f.read()
    assert 'dynamic = ["version"]' in pyproject and 'attr = "musicvae_xai.__version__"' in pyproject
    assert not re.search(r'^version\s*=', pyproject.split("[project.optional-dependencies]")[0], re.M)
    with open(os.path.join(REPO, "CHANGELOG.md"), encoding="utf-8") as f:
        releases = re.findall(r"^## (\S+)", f.read(), re.M)
    assert releases and releases[0] == musicvae_xai.__version__


def test_the_readme_is_a_front_door():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert len(readme.splitlines()) <= 150
    assert "```bash\npython3 -m pytest -q\n```" in readme  # the test command .ci/run runs
    ci = os.path.join(REPO, ".ci", "run")
    if os.path.exists(ci):  # not among Bazel's test inputs
        with open(ci, encoding="utf-8") as f:
            ci_text = f.read()  # .ci/run reads the test command from the README, after this line's start
        assert "readme_command '**Run the tests**'" in ci_text
        start = readme.index("\n**Run the tests**")
        assert readme[start:].split("```bash\n", 1)[1].startswith("python3 -m pytest -q\n")
