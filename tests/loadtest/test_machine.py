"""A report names the commit its code ran at, and says when the worktree's code differed."""

import subprocess
from pathlib import Path

from loadtest.report.machine import describe_code


def _git(repository: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repository), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_report_names_the_commit_and_any_changed_code_but_not_its_own_results(
    tmp_path: Path,
) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "service.py").write_text("print('sold')\n")
    _git(tmp_path, "add", "service.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    commit = _git(tmp_path, "rev-parse", "--short", "HEAD")

    (tmp_path / "loadtest" / "results" / "smoke").mkdir(parents=True)
    (tmp_path / "loadtest" / "results" / "smoke" / "run.json").write_text("{}")
    assert describe_code(tmp_path) == f"Code at commit {commit}, clean worktree."

    (tmp_path / "service.py").write_text("print('oversold')\n")
    assert describe_code(tmp_path) == f"Code at commit {commit} with 1 changed file(s): service.py."


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    assert describe_code(tmp_path) == "Code: not a git checkout, commit unknown."
