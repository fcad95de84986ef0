"""The REQUIRE_ALL_TESTS switch of tests/conftest.py: in CI a skipped test fails instead."""
import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run_skipping_test(tmp_path: Path, require_all: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_skips.py").write_text("import pytest\n\ndef test_needs_a_tool():\n    pytest.skip('tool missing')\n")
    env = {**os.environ, "REQUIRE_ALL_TESTS": require_all, "PYTHONPATH": f"{TESTS}{os.pathsep}{TESTS.parent}"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
           "-c", os.devnull, str(tmp_path / "test_skips.py")]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_skip_is_a_skip_by_default(tmp_path):
    done = run_skipping_test(tmp_path, "0")
    assert done.returncode == 0 and "1 skipped" in done.stdout


def test_skip_fails_when_every_test_is_required(tmp_path):
    done = run_skipping_test(tmp_path, "1")
    assert done.returncode == 1 and "1 failed" in done.stdout and "tool missing" in done.stdout
