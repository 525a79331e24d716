"""What `pip install` of the product's wheel puts on a machine: the services and the operator,
and none of the dev tooling (tools/ticketing_dev, loadtest, tests).

The wheel is built the way the Dockerfile builds it: from a copy of pyproject.toml, README.md,
services/ and operator/ alone, with `pip wheel --no-deps`.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {"ticketing", "ticketing_operator"}
DEV_TOOLING = ("ticketing_dev", "devstack", "demo.py", "loadtest", "tests", "ticketing_cluster")


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True, timeout=240)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files `pip install --no-deps` of the freshly built wheel installs."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("services", "operator"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("*.egg-info"))
    _pip("wheel", "--no-deps", "--wheel-dir", str(work / "dist"), str(source))
    (wheel,) = (work / "dist").glob("ticketing-*.whl")
    target = work / "site-packages"
    _pip("install", "--no-deps", "--no-compile", "--target", str(target), str(wheel))
    return target


@pytest.mark.slow
def test_installed_wheel_holds_only_the_services_and_the_operator(installed: Path) -> None:
    top_level = {path.name for path in installed.iterdir() if not path.name.endswith(".dist-info")}
    assert top_level == PRODUCT
    files = [path.relative_to(installed).as_posix() for path in installed.rglob("*")]
    assert "ticketing/__main__.py" in files
    assert "ticketing_operator/handlers.py" in files
    assert [f for f in files if any(part in f.split("/") for part in DEV_TOOLING)] == []


@pytest.mark.slow
def test_installed_wheel_declares_no_dev_command(installed: Path) -> None:
    (dist_info,) = installed.glob("ticketing-*.dist-info")
    entry_points = dist_info / "entry_points.txt"
    declared = entry_points.read_text() if entry_points.exists() else ""
    assert "ticketing-dev" not in declared
    assert "ticketing_dev" not in declared
    assert not (installed / "bin").exists()
