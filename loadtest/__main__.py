"""`python -m loadtest run <scenario>` runs a sale on the local platform and writes its report to
loadtest/results/<scenario>/; `report <run.json>` rebuilds a report; `list` shows the scenarios."""

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path

from ticketing_dev.ports import PortTaken
from ticketing_dev.process import ServerNotReady
from ticketing_dev.servers import MissingPrerequisite

from loadtest.platform import Platform, PlatformNotReady
from loadtest.report.record import RunRecord
from loadtest.report.write import RESULTS_DIR, summary_lines, write_report
from loadtest.run import CROWD_PROCESSES, run_scenario
from loadtest.scenarios import UnknownScenario, load_scenarios, scenario


def _run(args: argparse.Namespace) -> int:
    sale = scenario(args.scenario)
    results = args.results or RESULTS_DIR / sale.name
    with tempfile.TemporaryDirectory(prefix="loadtest-") as work:
        platform = Platform(Path(work), uuid.uuid4().hex[:8])
        platform.keep_logs()
        report = asyncio.run(
            run_scenario(
                sale,
                results,
                platform,
                lambda line: print(line, flush=True),
                args.machine_note,
                args.crowd_processes,
            )
        )
    print("\n".join(summary_lines(RunRecord.load(report.directory / "run.json"), report.broken)))
    print(f"report: {report.markdown}")
    return 0 if report.passed else 1


def _report(args: argparse.Namespace) -> int:
    record = RunRecord.load(args.record)
    report = write_report(record, scenario(record.scenario), args.record.parent)
    print(f"report: {report.markdown}")
    return 0 if report.passed else 1


def _list(_: argparse.Namespace) -> int:
    for sale in load_scenarios().values():
        print(
            f"{sale.name:14} {sale.users:>6} people  {sale.seats:>5} seats  {sale.tps:>4g}/s  {sale.description}"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario on the local platform and report")
    run.add_argument("scenario", help="a name from loadtest/scenarios.json")
    run.add_argument(
        "--results",
        type=Path,
        help="where to write the report (default loadtest/results/<scenario>)",
    )
    run.add_argument(
        "--machine-note",
        default="",
        help="what else ran on the machine during the run, written into the report",
    )
    run.add_argument(
        "--crowd-processes",
        type=int,
        default=CROWD_PROCESSES,
        help=f"processes the crowd is spread over (default {CROWD_PROCESSES})",
    )
    run.set_defaults(handler=_run)
    report = commands.add_parser("report", help="rebuild a report from its run.json")
    report.add_argument("record", type=Path)
    report.set_defaults(handler=_report)
    commands.add_parser("list", help="the scenarios").set_defaults(handler=_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (
        UnknownScenario,
        PlatformNotReady,
        MissingPrerequisite,
        PortTaken,
        ServerNotReady,
    ) as exc:
        print(f"loadtest: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
