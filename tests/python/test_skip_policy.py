"""--no-skips (skip_policy.py, used by CI) fails a run that skipped a test, and a plain run still passes."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_pytest(folder, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder),
                           *args, str(folder)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"}, cwd=folder)


def test_no_skips_fails_a_run_with_a_skip(tmp_path):
    (tmp_path / "conftest.py").write_text("from skip_policy import pytest_addoption, pytest_sessionfinish\n")
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_runs():\n    pass\n"
        "def test_skips():\n    pytest.importorskip('no_such_module_here', reason='oracle missing')\n")
    plain = run_pytest(tmp_path)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    strict = run_pytest(tmp_path, "--no-skips")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert "--no-skips: 1 test(s) skipped" in strict.stdout and "oracle missing" in strict.stdout
