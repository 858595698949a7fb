"""Runs one pytest file as a Bazel ``py_test``: its fast half or its slow half.

The top-level BUILD makes two test targets per ``tests/**/test_*.py`` file: ``test_x`` runs the
tests not marked ``@pytest.mark.slow`` and ``test_x_slow`` (tagged ``slow``) runs the ones that
are, so ``bazel test --test_tag_filters=-slow //...`` runs only the fast ones and
``bazel test //...`` runs the whole suite once.

Usage (as the BUILD file calls it; extra arguments, e.g. from ``--test_arg``, go to pytest):
    bazel_pytest_main.py --half=fast|slow tests/test_x.py [pytest args...]

A half that selects no test passes when the file's other half has tests (a file whose tests
are all slow has an empty fast half); a file that collects no test at all fails.
"""

import argparse
import os
import sys

# Bazel must not write into the source tree: no __pycache__ beside the (symlinked) sources,
# neither from this process nor from the subprocesses the tests start.
sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402  (after the environment above is set)

_MARK_EXPRESSIONS = {"fast": "not slow", "slow": "slow"}


class _DeselectionCounter:
    """Counts the tests that the ``-m`` expression deselected."""

    def __init__(self) -> None:
        self.deselected = 0

    def pytest_deselected(self, items) -> None:
        self.deselected += len(items)


def main(argv: list[str]) -> int:
    """Runs pytest on one test file and returns the exit code Bazel should see."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=sorted(_MARK_EXPRESSIONS), required=True,
                        help="fast: tests not marked slow; slow: tests marked slow")
    parser.add_argument("test_file", help="the test file, relative to the workspace root")
    args, pytest_args = parser.parse_known_args(argv)

    pytest_argv = [args.test_file, "-m", _MARK_EXPRESSIONS[args.half],
                   "-p", "no:cacheprovider", "-ra", "-v", "-n", "0"]  # Bazel runs the files in parallel
    test_tmpdir = os.environ.get("TEST_TMPDIR")
    if test_tmpdir:  # keep pytest's tmp_path inside Bazel's per-test directory
        pytest_argv += ["--basetemp", os.path.join(test_tmpdir, "pytest")]
    xml_output = os.environ.get("XML_OUTPUT_FILE")
    if xml_output:  # per-test-case results in Bazel's test.xml
        pytest_argv += ["--junitxml", xml_output]
    pytest_argv += pytest_args

    counter = _DeselectionCounter()
    code = pytest.main(pytest_argv, plugins=[counter])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED and counter.deselected:
        print(f"bazel_pytest_main: no {args.half} tests in {args.test_file} "
              f"({counter.deselected} in the other half); nothing to run.")
        return 0
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
