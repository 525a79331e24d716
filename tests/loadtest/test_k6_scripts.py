"""The k6 scripts: they parse, import nothing remote, and build the scenarios Python defines.

Parsing uses the `esprima` package (ES2017 modules). The options are built by node running
loadtest/k6/lib/options.js itself, so the figures compared are the ones k6 would use.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import esprima
import pytest

from loadtest.crowd.behaviour import pick_plan
from loadtest.crowd.client import place_from
from loadtest.scenarios import SCENARIOS_FILE, STEPS, load_scenarios
from tests.prerequisites import missing

K6_DIR = SCENARIOS_FILE.parent / "k6"
SCRIPTS = sorted(K6_DIR.rglob("*.js"))
ROLLS = [i / 100 for i in range(100)]


def _walk(node: Any) -> Any:
    """Every node of an esprima AST."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item)
    elif hasattr(node, "type"):
        yield node
        for value in vars(node).values():
            yield from _walk(value)


def _imports(script: Path) -> list[str]:
    tree = esprima.parseModule(script.read_text())
    return [node.source.value for node in _walk(tree.body) if node.type == "ImportDeclaration"]


def test_every_k6_script_is_found() -> None:
    assert {p.name for p in SCRIPTS} >= {"sale.js", "api.js", "options.js", "place.js"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_k6_script_imports_only_k6_builtins_and_local_files(script: Path) -> None:
    for source in _imports(script):
        if source == "k6" or source.startswith("k6/"):
            continue
        assert source.startswith("./") or source.startswith("../"), f"{script.name}: {source}"
        assert (script.parent / source).resolve().is_file(), f"{script.name}: {source} missing"


def test_sale_script_reads_the_shared_scenario_file() -> None:
    sale = K6_DIR / "sale.js"
    tree = esprima.parseModule(sale.read_text())
    opened = [
        node.arguments[0].value
        for node in _walk(tree.body)
        if node.type == "CallExpression" and getattr(node.callee, "name", None) == "open"
    ]
    assert [(sale.parent / path).resolve() for path in opened] == [SCENARIOS_FILE.resolve()]


QUEUE_MESSAGES = [
    {
        "type": "position",
        "position": 12,
        "ahead": 11,
        "waiting": 40,
        "active": 3,
        "sold_out": False,
    },
    {"type": "prequeue", "opens_at": "2026-12-01T12:00:00+00:00", "sold_out": False},
    {"type": "admitted", "token": "abc.def.ghi", "sold_out": False},
    {"type": "sold_out", "notice": "Every seat is sold."},
    {"type": "position", "position": 3, "sold_out": True},
    {"type": "closed", "reason": "the sale is not configured"},
]


def _node(program: str) -> Any:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed: scripts/install/debian.sh installs Debian's nodejs")
    result = subprocess.run(
        [node, "--input-type=module", "-e", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_k6_reads_queue_messages_as_the_python_crowd_does() -> None:
    module = (K6_DIR / "lib" / "place.js").as_uri()
    program = f"""
import {{ placeOf }} from "{module}";
console.log(JSON.stringify({json.dumps(QUEUE_MESSAGES)}.map(placeOf)));
"""
    read_by_k6 = _node(program)

    for message, k6_place in zip(QUEUE_MESSAGES, read_by_k6, strict=True):
        place = place_from(message)
        assert k6_place == {
            "state": place.state.value,
            "position": place.position,
            "admission_token": place.admission_token,
        }, message


def _node_options() -> dict[str, Any]:
    program = f"""
import {{ readFileSync }} from "node:fs";
import {{ buildOptions, pickBehaviour, totalUsers }} from "{(K6_DIR / "lib" / "options.js").as_uri()}";
const scenarios = JSON.parse(readFileSync({json.dumps(str(SCENARIOS_FILE))}, "utf8"));
const rolls = {json.dumps(ROLLS)};
const out = {{}};
for (const [name, s] of Object.entries(scenarios)) {{
  out[name] = {{ options: buildOptions(s), users: totalUsers(s),
                plans: rolls.map((r) => pickBehaviour(s.behaviour, r)) }};
}}
console.log(JSON.stringify(out));
"""
    built: dict[str, Any] = _node(program)
    return built


def test_k6_builds_the_same_scenarios_as_python() -> None:
    built = _node_options()
    scenarios = load_scenarios()

    assert set(built) == set(scenarios)
    for name, sale in scenarios.items():
        options = built[name]["options"]
        buyers = options["scenarios"]["buyers"]
        assert buyers["executor"] == "ramping-arrival-rate"
        assert [(s["duration"], s["target"]) for s in buyers["stages"]] == [
            (f"{seconds:g}s", target) for seconds, target in sale.arrival.stages
        ]
        assert built[name]["users"] == sale.users
        expected = {"http_req_failed": [f"rate<{sale.thresholds.error_rate:g}"]}
        for step in STEPS:
            bound = sale.thresholds.latency_ms[step]
            expected[f"step_{step}"] = [f"p(95)<{bound.p95:g}", f"p(99)<{bound.p99:g}"]
        assert options["thresholds"] == expected, name
        assert built[name]["plans"] == [pick_plan(sale.behaviour, roll) for roll in ROLLS], name
