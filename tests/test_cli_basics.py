import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from hrm_mlx.cli.main import _register, app

_register()
runner = CliRunner()


@pytest.mark.slow
def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("doctor", "bench"):
        assert command in result.output


def test_doctor_json_reports_environment_and_sgemm():
    result = runner.invoke(app, ["doctor", "--json", "--size", "256"])
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert info["mlx"] and info["blas"] and info["sgemm_gflops"] > 0


@pytest.mark.slow
def test_module_entry_point_and_bad_option_exit_code():
    ok = subprocess.run([sys.executable, "-m", "hrm_mlx", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "doctor" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "hrm_mlx", "doctor", "--size", "abc"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_unknown_recipe_is_a_one_line_error():
    bad = subprocess.run([sys.executable, "-m", "hrm_mlx", "bench", "--model", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("hrm-mlx: error: unknown recipe 'nope'")
    assert "Traceback" not in bad.stderr


def test_library_notes_go_to_stderr_as_it_is_when_they_are_logged(monkeypatch):
    """In-process callers swap sys.stderr between commands (tests, notebooks); a note logged after the stream the
    CLI first saw was closed still reaches the current stderr, once per note however often main() ran."""
    import io
    import logging

    from hrm_mlx.cli import main as cli_main

    monkeypatch.setattr(cli_main, "_register", lambda *argv: None)  # the commands are registered above
    for _ in range(2):
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        monkeypatch.setattr(sys, "argv", ["hrm-mlx", "--help"])
        with pytest.raises(SystemExit):
            cli_main.main()
        sys.stderr.close()
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    logging.getLogger("hrm_mlx.solve").warning("a note")
    assert now.getvalue() == "hrm-mlx: a note\n"
