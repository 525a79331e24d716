"""A server process started by the local stack: its log, its readiness, its clean stop."""

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path


def http_ready(port: int, path: str = "/readyz") -> bool:
    """Whether a local service on `port` answers its readiness probe with 200."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
        return bool(reply.status == 200)


class ServerNotReady(RuntimeError):
    """A server did not start or did not answer its health check in time."""


class ManagedProcess:
    """One child process whose output goes to a log file under the stack's run directory."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})},
                cwd=self.cwd,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> None:
        """Poll `check` until it returns True; fail with the log's tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServerNotReady(
                    f"{self.name} exited before it was ready; last lines of {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001 - any failure of a health check means "not yet"
                pass
            time.sleep(interval)
        raise ServerNotReady(
            f"{self.name} did not answer its health check within {timeout:.0f}s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it outlives `timeout`."""
        if self._popen is None or self._popen.poll() is not None:
            return
        os.killpg(self._popen.pid, signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait()

    def kill(self) -> None:
        """SIGKILL at once: a crash, for fault-injection tests."""
        if self._popen is not None and self._popen.poll() is None:
            os.killpg(self._popen.pid, signal.SIGKILL)
            self._popen.wait()
