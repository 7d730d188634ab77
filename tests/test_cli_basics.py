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


def test_library_notes_reach_stderr_only_while_a_command_runs(monkeypatch):
    """In-process callers swap and close sys.stderr between commands (tests, notebooks): after main() the
    library's logger is as before, so a later note neither goes to a closed stream nor prints."""
    import io
    import logging

    from hrm_mlx.cli import main as cli_main

    library = logging.getLogger("hrm_mlx")
    before = (list(library.handlers), library.level)
    monkeypatch.setattr(cli_main, "_register", lambda *argv: None)  # the commands are registered above
    seen = []
    monkeypatch.setattr(cli_main, "_command", lambda: lambda prog_name: (
        seen.append(library.getEffectiveLevel()), logging.getLogger("hrm_mlx.solve").info("a note")))
    for _ in range(2):
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        cli_main.main()
        assert sys.stderr.getvalue() == "hrm-mlx: a note\n"
        sys.stderr.close()
    assert seen == [logging.INFO, logging.INFO] and (list(library.handlers), library.level) == before
    now = io.StringIO()
    monkeypatch.setattr(sys, "stderr", now)
    logging.getLogger("hrm_mlx.solve").warning("a later note")
    assert "Logging error" not in now.getvalue() and "hrm-mlx:" not in now.getvalue()


def test_ctrl_c_while_a_command_is_being_loaded_exits_130_without_a_traceback(monkeypatch, capsys):
    from hrm_mlx.cli import main as cli_main

    def interrupted(argv):
        raise KeyboardInterrupt  # Ctrl-C while the command's module (and mlx, numpy) is being imported

    monkeypatch.setattr(cli_main, "_register", interrupted)
    monkeypatch.setattr(sys, "argv", ["hrm-mlx", "solve", "x.txt"])
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main()
    assert exit_info.value.code == 130 and capsys.readouterr().err == "hrm-mlx: interrupted\n"
