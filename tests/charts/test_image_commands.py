"""The image's install, replayed from the Dockerfile itself, runs every command the chart's pods run.

The builder stage's ENV, WORKDIR, COPY and RUN instructions are read with Docker's parser and
executed here, with the image's absolute paths moved into a temporary directory: the wheel is
built and installed into a clean virtualenv exactly as in the image. Then each component of
the chart starts from that virtualenv, with the environment the chart renders for it, against
the session's real Redis, MariaDB and Kafka and must answer its liveness probe.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dockerfile
import pytest
from ticketing_dev.stack import LocalStack

from tests.charts.chart import ROOT, by_kind, chart_values, component_commands, render
from tests.charts.local_release import Addresses, LocalPod, local_pods

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60


def builder_stage() -> list[dockerfile.Command]:
    parsed = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    first = min(i for i, c in enumerate(parsed) if c.cmd == "FROM")
    final = max(i for i, c in enumerate(parsed) if c.cmd == "FROM")
    return list(parsed[first + 1 : final])


def replay(stage: list[dockerfile.Command], into: Path, overrides: dict[str, str]) -> None:
    """Run the stage's instructions on this machine; `overrides` wins over the stage's ENV."""
    bin_dir = into / "bin"
    bin_dir.mkdir()
    # The image's `python` is the base image's interpreter, not a virtualenv's.
    (bin_dir / "python").symlink_to(sys._base_executable)
    (bin_dir / "python3").symlink_to(sys._base_executable)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(into))}
    workdir = into
    for command in stage:
        if command.cmd == "ENV":
            pairs = dict(zip(command.value[::2], command.value[1::2], strict=True))
            env.update({k: overrides.get(k, v) for k, v in pairs.items() if k in overrides or
                        not k.startswith("PIP_NO_CACHE")})  # fmt: skip
        elif command.cmd == "WORKDIR":
            workdir = into / command.value[0].lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif command.cmd == "ARG":
            # A build argument without a value on the command line: the replay passes none.
            continue
        elif command.cmd == "COPY":
            *sources, destination = command.value
            target = workdir / destination
            into_directory = len(sources) > 1 or destination.endswith("/")
            for source in (m for pattern in sources for m in sorted(ROOT.glob(pattern))):
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
                elif into_directory:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy(source, target / source.name)
                else:
                    shutil.copy(source, target)
        elif command.cmd == "RUN":
            result = subprocess.run(
                ["/bin/sh", "-c", command.value[0]],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=900, check=False,
            )  # fmt: skip
            assert result.returncode == 0, (
                f"Dockerfile line {command.start_line} failed:\n{result.stderr[-3000:]}"
            )
        else:
            raise AssertionError(
                f"the replay does not know {command.cmd} (line {command.start_line})"
            )


@pytest.fixture(scope="session")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's virtualenv, built once per session by replaying the Dockerfile."""
    root = tmp_path_factory.mktemp("image")
    venv = root / "opt" / "ticketing"
    # The pip cache is the only difference from the image (where PIP_NO_CACHE_DIR keeps the
    # layer small): it changes how fast packages arrive, not which.
    cache = Path(os.environ.get("TICKETING_CACHE", Path.home() / ".cache" / "ticketing"))
    overrides = {"VIRTUAL_ENV": str(venv), "WHEEL_DIR": str(root / "wheels"),
                 "PIP_CACHE_DIR": str(cache / "pip"), "PIP_FIND_LINKS": str(root / "src")}  # fmt: skip
    replay(builder_stage(), root, overrides)
    return venv


def test_image_install_is_a_clean_virtualenv_with_the_wheel(image_venv: Path) -> None:
    result = subprocess.run(
        [str(image_venv / "bin" / "python"), "-c",
         "import ticketing, ticketing_operator; print(ticketing.__file__)"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    # Installed from the wheel into the venv, not an editable link back to the work tree.
    assert str(image_venv) in result.stdout
    assert str(ROOT) not in result.stdout


def test_chart_runs_exactly_the_components_of_its_values(helm_binary: Path) -> None:
    deployments = by_kind(render(helm_binary), "Deployment").values()

    commands = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"][
            "containers"
        ][0]["command"]
        for d in deployments
    }
    assert commands == {
        name: ["python", "-m", "ticketing", command]
        for name, command in component_commands().items()
    }


@pytest.fixture
def rendered_pods(
    helm_binary: Path,
    stack: LocalStack,
    database_url: str,
    test_id: str,
    request: pytest.FixtureRequest,
) -> dict[str, LocalPod]:
    """The chart's pods, from their rendered environment, pointed at the session's servers."""
    isolation = {
        "TICKETING_REDIS_KEY_PREFIX": f"t{test_id}",
        "TICKETING_KAFKA_TOPIC_PREFIX": f"t{test_id}.",
    }
    if "operator" in component_commands():
        plane = request.getfixturevalue("kube_control_plane")
        isolation["TICKETING_OPERATOR_KUBECONFIG"] = str(plane.kubeconfig)
    addresses = Addresses(stack.redis.url, database_url, stack.kafka.bootstrap)
    return local_pods(render(helm_binary), addresses, isolation=isolation)


def test_migrate_command_of_the_chart_job_succeeds(
    image_venv: Path, rendered_pods: dict[str, LocalPod]
) -> None:
    env = {**rendered_pods["user"].env, "PATH": f"{image_venv / 'bin'}:/usr/bin:/bin"}
    result = subprocess.run(
        [str(image_venv / "bin" / "python"), "-m", "ticketing", "migrate"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 0, f"python -m ticketing migrate failed:\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("component", list(component_commands()))
def test_chart_component_starts_from_the_image_venv_and_answers_healthz(
    image_venv: Path, rendered_pods: dict[str, LocalPod], component: str
) -> None:
    pod = rendered_pods[component]
    pod.env["PATH"] = f"{image_venv / 'bin'}:/usr/bin:/bin"
    pod.start(image_venv / "bin" / "python")
    try:
        status, _ = pod.get(chart_values()["components"][component]["probes"]["liveness"])
    finally:
        pod.stop()

    assert status == 200
