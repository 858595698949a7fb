"""The Bazel BUILD covers the whole package: every module, every test file, every entry point.

The top-level BUILD is evaluated in plain Python (its globs expanded over the source tree with
Bazel's rules: `*` stays inside one path segment, `**` spans any number of them, and a glob
never descends into a subpackage, i.e. a directory with its own BUILD file), so these checks
need no Bazel. One slow test compares the evaluation with `bazel query` where Bazel is installed.

Under `bazel test` the files reach this test through runfiles symlinks; resolving them leads
back to the source tree, which is what must be checked (a module missing from every py_library
is missing from runfiles too).
"""

import ast
import os
import pathlib
import re
import shutil
import subprocess
import tomllib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "musicvae_xai"
BUILD_FILE_NAMES = ("BUILD", "BUILD.bazel")
RULE_KINDS = ("py_library", "py_binary", "py_test", "genrule", "filegroup", "test_suite")
STARLARK_BUILTINS = {f.__name__: f for f in (
    all, any, bool, dict, enumerate, int, len, list, max, min, range, reversed, sorted, str,
    tuple, zip)}


# --- evaluating the BUILD file -------------------------------------------------------------


def _segment_regex(segment: str) -> str:
    return "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in segment)


def glob_regex(pattern: str) -> re.Pattern:
    """Compiles a Bazel glob pattern (relative to the package) into a regex for file paths."""
    segments = pattern.split("/")
    parts = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            parts.append(r"(?:[^/]+/)*[^/]+" if last else r"(?:[^/]+/)*")
        elif "**" in segment:
            raise ValueError(f"glob pattern {pattern!r}: '**' must be a whole path segment")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z")


def _ignored_dirs(root: pathlib.Path) -> set[str]:
    ignore_file = root / ".bazelignore"
    if not ignore_file.is_file():
        return set()
    lines = ignore_file.read_text(encoding="utf-8").splitlines()
    return {line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")}


def package_files(root: pathlib.Path) -> list[str]:
    """Files of the root package, as Bazel's glob sees them: no subpackages, no ignored dirs."""
    ignored = _ignored_dirs(root)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        kept = []
        for name in sorted(dirnames):
            rel = rel_dir + name
            if rel_dir == "" and (name.startswith("bazel-") or name == ".git"):
                continue  # Bazel's convenience symlinks and git's store
            if rel in ignored:
                continue
            if any((pathlib.Path(dirpath) / name / b).is_file() for b in BUILD_FILE_NAMES):
                continue  # a subpackage: the root package's globs stop here
            kept.append(name)
        dirnames[:] = kept
        files.extend(rel_dir + name for name in filenames)
    return sorted(files)


class BuildFile:
    """The rules a BUILD file declares, evaluated in Python with Bazel's glob semantics."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.rules: list[tuple[str, dict]] = []
        self._files = package_files(root)
        # One dict for globals and locals: comprehensions look names up in the globals.
        namespace = {kind: self._recorder(kind) for kind in RULE_KINDS}
        namespace.update(glob=self.glob, package=lambda **kw: None,
                         exports_files=lambda *a, **kw: None, load=self._load,
                         __builtins__=STARLARK_BUILTINS)
        path = next((root / b for b in BUILD_FILE_NAMES if (root / b).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"no BUILD file at the repository root {root}")
        code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        exec(code, namespace)  # noqa: S102  (our own BUILD file, with Starlark's builtins only)
        self.globals = namespace

    def _recorder(self, kind: str):
        def record(**attrs):
            self.rules.append((kind, attrs))
        return record

    @staticmethod
    def _load(label: str, *symbols: str) -> None:
        unknown = [s for s in symbols if s not in RULE_KINDS]
        if unknown:
            raise NotImplementedError(f"BUILD loads {unknown} from {label}: teach this test about it")

    def glob(self, include, exclude=(), exclude_directories=1, allow_empty=True):
        """Bazel's glob() over the root package's files (directories are never returned)."""
        del exclude_directories, allow_empty
        inc = [glob_regex(p) for p in include]
        exc = [glob_regex(p) for p in exclude]
        return [f for f in self._files
                if any(r.match(f) for r in inc) and not any(r.match(f) for r in exc)]

    def targets(self, kind: str) -> list[dict]:
        return [attrs for k, attrs in self.rules if k == kind]

    def files_of(self, kind: str, attr: str) -> set[str]:
        """Source files (not labels) listed in `attr` of every rule of `kind`."""
        return {f for t in self.targets(kind) for f in t.get(attr, [])
                if not f.startswith(":") and not f.startswith("//")}


# --- what must be covered --------------------------------------------------------------------


def package_modules(root: pathlib.Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / PACKAGE).rglob("*.py")
                  if "__pycache__" not in p.parts)


def repo_test_files(root: pathlib.Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "tests").rglob("test_*.py")
                  if "__pycache__" not in p.parts)


def _has_main_guard(path: pathlib.Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            operands = [node.test.left, *node.test.comparators]
            if (any(isinstance(n, ast.Name) and n.id == "__name__" for n in operands)
                    and any(isinstance(n, ast.Constant) and n.value == "__main__"
                            for n in operands)):
                return True
    return False


def entry_point_modules(root: pathlib.Path) -> list[str]:
    """Dotted names runnable as `python -m`: modules with a __main__ guard, packages with __main__.py."""
    modules = []
    for rel in package_modules(root):
        dotted = rel[:-len(".py")].replace("/", ".")
        if dotted.endswith(".__main__"):
            modules.append(dotted[:-len(".__main__")])
        elif _has_main_guard(root / rel):
            modules.append(dotted)
    return sorted(modules)


def setup_package_data(root: pathlib.Path) -> list[str]:
    """Files pyproject.toml ships as package data ([tool.setuptools.package-data], as setuptools globs them)."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = data.get("tool", {}).get("setuptools", {}).get("package-data", {})
    patterns = [f"{pkg.replace('.', '/')}/{p}" for pkg, ps in package_data.items() for p in ps]
    return sorted({p.relative_to(root).as_posix() for pattern in patterns
                   for p in root.glob(pattern) if p.is_file()})


def coverage_problems(root: pathlib.Path) -> list[str]:
    """Everything the BUILD at `root` fails to cover, one line each (empty when all is covered)."""
    build = BuildFile(root)
    problems = []
    library_srcs = build.files_of("py_library", "srcs")
    problems += [f"module {m} is in no py_library" for m in package_modules(root)
                 if m not in library_srcs]

    library_data = build.files_of("py_library", "data")
    problems += [f"package data {f} (pyproject.toml package-data) is in no py_library's data"
                 for f in setup_package_data(root) if f not in library_data]

    for test_file in repo_test_files(root):
        covering = [t for t in build.targets("py_test") if test_file in t.get("srcs", [])]
        if not covering:
            problems.append(f"test file {test_file} has no py_test")
        elif all("slow" in t.get("tags", []) for t in covering):
            problems.append(f"test file {test_file} has only slow-tagged py_tests, so "
                            "`bazel test --test_tag_filters=-slow` never runs its fast tests")

    binaries = {t["name"] for t in build.targets("py_binary")}
    entry_points = build.globals.get("ENTRY_POINTS", {})
    for module in entry_point_modules(root):
        names = [name for name, m in entry_points.items() if m == module]
        if not names:
            suggestion = module.rsplit(".", 1)[-1]
            problems.append(f"entry point `python -m {module}` has no py_binary: add "
                            f"\"{suggestion}\": \"{module}\", to ENTRY_POINTS in BUILD")
        elif not any(name in binaries for name in names):
            problems.append(f"entry point `python -m {module}` has no py_binary {names}")
    return problems


# --- the checks on this checkout -------------------------------------------------------------


def test_build_covers_every_module_test_file_and_entry_point():
    problems = coverage_problems(REPO_ROOT)
    assert not problems, "BUILD does not cover:\n" + "\n".join(problems)


def test_binaries_exist_exactly_for_present_entry_points():
    build = BuildFile(REPO_ROOT)
    binaries = {t["name"] for t in build.targets("py_binary")}
    for name, module in build.globals["ENTRY_POINTS"].items():
        base = REPO_ROOT / module.replace(".", "/")
        present = base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()
        assert (name in binaries) == present, (name, module, present)


# --- the checks really fail: on a copy of the checkout, with one thing left uncovered ---------


def _copy_tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the parts of the checkout the BUILD reads (no caches, no data sets)."""
    root = tmp_path / "checkout"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in (PACKAGE, "tests"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=skip)
    for name in ("BUILD", "setup.py", "pyproject.toml", ".bazelignore"):
        if (REPO_ROOT / name).is_file():
            shutil.copy2(REPO_ROOT / name, root / name)
    return root


@pytest.fixture()
def checkout(tmp_path):
    """(copy of the checkout, the problems it starts with: the same as this checkout's)."""
    root = _copy_tree(tmp_path)
    baseline = coverage_problems(root)
    assert baseline == coverage_problems(REPO_ROOT)
    return root, baseline


def _new_problems(root: pathlib.Path, baseline: list[str]) -> list[str]:
    return [p for p in coverage_problems(root) if p not in baseline]


def test_new_modules_and_subpackages_are_covered(checkout):
    root, baseline = checkout
    (root / PACKAGE / "brand_new_module.py").write_text("X = 1\n")
    (root / PACKAGE / "readers" / "brand_new_reader.py").write_text("X = 1\n")
    (root / PACKAGE / "newarea" / "deeper").mkdir(parents=True)
    (root / PACKAGE / "newarea" / "__init__.py").write_text("")
    (root / PACKAGE / "newarea" / "deeper" / "thing.py").write_text("X = 1\n")
    assert _new_problems(root, baseline) == []
    libraries = {t["name"]: t.get("srcs", []) for t in BuildFile(root).targets("py_library")}
    assert libraries["musicvae_xai_newarea"] == [
        f"{PACKAGE}/newarea/__init__.py", f"{PACKAGE}/newarea/deeper/thing.py"]


def test_module_left_out_of_every_library_fails(checkout):
    root, baseline = checkout
    (root / PACKAGE / "readers" / "extra.py").write_text("X = 1\n")
    build = root / "BUILD"
    text = build.read_text(encoding="utf-8")
    discovery = 'glob(["musicvae_xai/*/**/*.py"])'
    assert discovery in text
    build.write_text(text.replace(
        discovery, 'glob(["musicvae_xai/*/**/*.py"], exclude = ["musicvae_xai/readers/**"])'))
    readers = sorted(p.relative_to(root).as_posix()
                     for p in (root / PACKAGE / "readers").rglob("*.py"))
    assert f"{PACKAGE}/readers/extra.py" in readers
    assert _new_problems(root, baseline) == [f"module {m} is in no py_library" for m in readers]


def test_module_behind_a_package_boundary_fails(checkout):
    root, baseline = checkout
    (root / PACKAGE / "readers" / "extra.py").write_text("X = 1\n")
    (root / PACKAGE / "readers" / "BUILD").write_text("# a subpackage hides its files\n")
    problems = _new_problems(root, baseline)
    assert f"module {PACKAGE}/readers/extra.py is in no py_library" in problems
    assert all(f"{PACKAGE}/readers/" in p or f"{PACKAGE}.readers." in p for p in problems)


def test_test_file_without_py_test_fails(checkout):
    root, baseline = checkout
    (root / "tests" / "nested").mkdir()
    (root / "tests" / "nested" / "BUILD").write_text("")
    (root / "tests" / "nested" / "test_hidden.py").write_text("def test_x():\n    pass\n")
    assert _new_problems(root, baseline) == [
        "test file tests/nested/test_hidden.py has no py_test"]


def test_new_test_file_gets_a_fast_and_a_slow_target(checkout):
    root, baseline = checkout
    (root / "tests" / "test_brand_new.py").write_text("def test_x():\n    pass\n")
    assert _new_problems(root, baseline) == []
    tests = {t["name"]: t for t in BuildFile(root).targets("py_test")}
    assert "slow" not in tests["test_brand_new"]["tags"]
    assert "slow" in tests["test_brand_new_slow"]["tags"]
    assert tests["test_brand_new"]["args"] == ["--half=fast", "$(location tests/test_brand_new.py)"]


def test_entry_point_without_binary_fails(checkout):
    root, baseline = checkout
    (root / PACKAGE / "newcli.py").write_text(
        "def main():\n    pass\n\n\nif __name__ == '__main__':\n    main()\n")
    assert _new_problems(root, baseline) == [
        f"entry point `python -m {PACKAGE}.newcli` has no py_binary: add "
        f'"newcli": "{PACKAGE}.newcli", to ENTRY_POINTS in BUILD']


def test_listed_entry_point_gets_a_binary_when_its_module_lands(checkout):
    root, baseline = checkout
    entry_points = BuildFile(root).globals["ENTRY_POINTS"]
    for name in ("study", "explorer"):
        base = root / entry_points[name].replace(".", "/")
        for path in (base.with_suffix(".py"), base / "__main__.py"):
            if path.exists():
                path.unlink()
    binaries = {t["name"] for t in BuildFile(root).targets("py_binary")}
    assert "study" not in binaries and "explorer" not in binaries
    (root / PACKAGE / "study.py").write_text("if __name__ == '__main__':\n    pass\n")
    (root / PACKAGE / "explorer").mkdir(exist_ok=True)
    (root / PACKAGE / "explorer" / "__main__.py").write_text("pass\n")
    binaries = {t["name"] for t in BuildFile(root).targets("py_binary")}
    assert "study" in binaries and "explorer" in binaries
    assert _new_problems(root, baseline) == []


def test_package_data_missing_from_build_fails(checkout):
    root, baseline = checkout
    setup = root / "pyproject.toml"
    text = setup.read_text(encoding="utf-8")
    assert '"embedded_data/*"' in text
    setup.write_text(text.replace('"embedded_data/*"', '"embedded_data/*", "templates/*"'))
    (root / PACKAGE / "templates").mkdir()
    (root / PACKAGE / "templates" / "page.html").write_text("<html></html>\n")
    assert _new_problems(root, baseline) == [
        f"package data {PACKAGE}/templates/page.html (pyproject.toml package-data) "
        "is in no py_library's data"]


def test_glob_semantics(tmp_path):
    for rel in ("a/x.py", "a/b/y.py", "a/b/c/z.py", "a/b/c/z.txt", "a/sub/w.py", "top.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "a" / "sub" / "BUILD.bazel").write_text("")
    (tmp_path / "BUILD").write_text("")
    build = BuildFile(tmp_path)
    assert build.glob(["a/*.py"]) == ["a/x.py"]
    assert build.glob(["a/**/*.py"]) == ["a/b/c/z.py", "a/b/y.py", "a/x.py"]
    assert build.glob(["a/**"], exclude=["**/*.txt"]) == ["a/b/c/z.py", "a/b/y.py", "a/x.py"]
    assert build.glob(["*.py"]) == ["top.py"]
    assert build.glob(["a/b/c/z.t?t", "nothing/*"]) == ["a/b/c/z.txt"]


@pytest.mark.slow
def test_python_evaluation_agrees_with_bazel_query(tmp_path):
    """The pure-Python reading of BUILD gives the sources and targets `bazel query` gives."""
    if os.environ.get("TEST_SRCDIR"):
        pytest.skip("running inside a Bazel test: no nested Bazel")
    bazel = shutil.which("bazel")
    if bazel is None:
        pytest.skip("bazel is not installed")
    output_base = tmp_path / "output_base"
    base = [bazel, f"--output_base={output_base}", "--max_idle_secs=30"]

    def query(expression: str) -> set[str]:
        result = subprocess.run(base + ["query", expression, "--output=label"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        return {line[len("//:"):] for line in result.stdout.split() if line.startswith("//:")}

    try:
        build = BuildFile(REPO_ROOT)
        assert query("labels(srcs, kind(py_library, //:*))") == build.files_of("py_library", "srcs")
        assert query("labels(data, kind(py_library, //:*))") == build.files_of("py_library", "data")
        assert query("kind(py_test, //:*)") == {t["name"] for t in build.targets("py_test")}
        assert query("kind(py_binary, //:*)") == {t["name"] for t in build.targets("py_binary")}
        assert (query("attr(tags, slow, kind(py_test, //:*))")
                == {t["name"] for t in build.targets("py_test") if "slow" in t["tags"]})
    finally:
        subprocess.run(base + ["shutdown"], cwd=REPO_ROOT, capture_output=True, timeout=120,
                       check=False)
        subprocess.run(["chmod", "-R", "u+w", str(output_base)], capture_output=True, check=False)
