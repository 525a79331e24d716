"""The Dockerfile, read by Docker's own parser: pinned base, non-root user, no baked secrets."""

import re

import dockerfile

from tests.charts.chart import ROOT

SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|API_?KEY", re.IGNORECASE)


def commands() -> tuple[dockerfile.Command, ...]:
    parsed: tuple[dockerfile.Command, ...] = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    return parsed


def build_arguments() -> dict[str, str]:
    """The ARGs declared with a default, as a plain `docker build` resolves them."""
    defaults = {}
    for command in commands():
        if command.cmd == "ARG" and "=" in command.value[0]:
            name, default = command.value[0].split("=", 1)
            defaults[name] = default
    return defaults


def test_every_base_image_is_pinned_to_an_exact_release() -> None:
    arguments = build_arguments()
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], c.value[0])
        for c in commands()
        if c.cmd == "FROM"
    ]

    assert bases
    for base in bases:
        # Either a digest, or a tag naming an exact patch release (3.11.7), never "latest".
        assert "@sha256:" in base or re.search(r":\d+\.\d+\.\d+-", base), base


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    parsed = commands()
    final_stage = parsed[max(i for i, c in enumerate(parsed) if c.cmd == "FROM") :]

    users = [c.value[0] for c in final_stage if c.cmd == "USER"]
    assert users, "the final stage sets no USER, so it runs as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_no_env_or_arg_carries_a_secret() -> None:
    for command in commands():
        if command.cmd in ("ENV", "ARG"):
            names = command.value[::2] if command.cmd == "ENV" else command.value
            for name in names:
                assert not SECRET_NAME.search(name.split("=")[0]), command.original


def test_one_entry_point_chooses_the_service_by_argument() -> None:
    entrypoints = [c for c in commands() if c.cmd == "ENTRYPOINT"]

    assert [c.value for c in entrypoints] == [("python", "-m", "ticketing")]
    assert entrypoints[0].json


def test_dependencies_install_before_the_code_is_copied() -> None:
    parsed = commands()
    builder = parsed[: max(i for i, c in enumerate(parsed) if c.cmd == "FROM")]
    copies = [i for i, c in enumerate(builder) if c.cmd == "COPY"]
    first_code = next(i for i in copies if builder[i].value[0] == "services")
    deps = next(i for i, c in enumerate(builder) if c.cmd == "RUN" and "requirements" in c.value[0])

    assert builder[copies[0]].value[0] == "pyproject.toml"
    assert deps < first_code
