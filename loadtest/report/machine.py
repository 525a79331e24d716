"""The machine a load run ran on, as its report describes it: figures on one shared machine
measure the machine as much as the platform, so every report says which machine and how busy."""

import os
import platform
import resource
import statistics
import subprocess
from pathlib import Path

from pydantic import BaseModel, Field


class Machine(BaseModel):
    cpus: int
    cpu_model: str
    memory_gib: float
    os: str
    kernel: str
    python: str
    open_files_limit: int
    load_1min: list[float] = Field(
        default_factory=list, description="the 1-minute load average, sampled during the run"
    )
    note: str = Field(default="", description="what else ran on the machine, in words")
    code: str = Field(default="", description="the commit the code ran at, and its worktree")

    def describe(self) -> list[str]:
        """The report's lines about the machine."""
        lines = [
            f"{self.cpus} cores ({self.cpu_model}), {self.memory_gib:.1f} GiB memory, {self.os}, "
            f"kernel {self.kernel}, Python {self.python}, open-file limit {self.open_files_limit}",
        ]
        if self.load_1min:
            lines.append(
                f"load average (1 min) during the run: min {min(self.load_1min):.1f}, "
                f"median {statistics.median(self.load_1min):.1f}, max {max(self.load_1min):.1f} "
                f"({len(self.load_1min)} samples)"
            )
        if self.code:
            lines.append(self.code)
        if self.note:
            lines.append(self.note)
        return lines


def _os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


REPOSITORY = Path(__file__).resolve().parents[2]
# Runs write their reports into the checkout; those files do not change the code that ran.
RESULTS = "loadtest/results/"


def describe_code(repository: Path = REPOSITORY) -> str:
    """The commit the checkout is at and whether its code differs from it (reports aside)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repository), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        changed = [
            line[3:]
            for line in git("status", "--porcelain", "--untracked-files=all").splitlines()
            if not line[3:].startswith(RESULTS)
        ]
    except (OSError, subprocess.CalledProcessError):
        return "Code: not a git checkout, commit unknown."
    if not changed:
        return f"Code at commit {commit}, clean worktree."
    return f"Code at commit {commit} with {len(changed)} changed file(s): {', '.join(changed[:5])}."


def describe_machine(load_1min: list[float], note: str = "") -> Machine:
    """This machine now, with the load samples taken while the run went on."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return Machine(
        cpus=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        memory_gib=round(memory, 1),
        os=_os_name(),
        kernel=platform.release(),
        python=platform.python_version(),
        open_files_limit=resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        load_1min=load_1min,
        note=note,
        code=describe_code(),
    )
