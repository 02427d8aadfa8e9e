"""The `tracedrill` command: parse flags, build options, hand over. No logic lives here."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tracedrill import __version__, local
from tracedrill.console import Console
from tracedrill.loadgen import DEFAULT_LOCUSTFILE, LoadPlan

EPILOG = """exit codes: 0 every check passed (unverifiable checks are reported, not failed, unless
--fail-on-unverifiable); 1 a check failed or timed out; 2 usage or configuration error.

Locust flags pass through after `--`, e.g.  tracedrill run -- --loglevel DEBUG"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracedrill",
        description="Drive load at an instrumented service, then prove its telemetry arrived in Honeycomb, "
        "AWS X-Ray, CloudWatch Logs and Rollbar.",
    )
    parser.add_argument("--version", action="version", version=f"tracedrill {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a drill: load, wait, verify, report",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load = run.add_argument_group("load (Locust)")
    load.add_argument("--users", type=int, default=10, help="concurrent Locust users (default 10)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    load.add_argument("--run-time", default="20s", help="how long to send load, e.g. 20s, 1m30s (default 20s)")
    load.add_argument(
        "--locustfile",
        type=Path,
        default=DEFAULT_LOCUSTFILE,
        help="replace the bundled Cruddur locustfile (it must write the sent-ledger, see README)",
    )
    where = run.add_argument_group("target and backends")
    where.add_argument(
        "--target",
        metavar="URL",
        help="verify an app that is already running at URL instead of starting the bundled one",
    )
    where.add_argument(
        "--backends",
        choices=("local", "cloud"),
        default="local",
        help="local: start the embedded emulators (default); cloud: the real services, "
        "configured by the usual environment variables (see README)",
    )
    where.add_argument("--app-workers", type=int, default=2, help="gunicorn workers of the bundled target (default 2)")
    where.add_argument(
        "--disable",
        default="",
        metavar="LIST",
        help="switch off instrumentations in the bundled target: comma list of "
        "otel,xray,cloudwatch,rollbar (shows the verifiers catching it)",
    )
    where.add_argument(
        "--honeycomb-plan",
        choices=("enterprise", "free"),
        default="enterprise",
        help="local Honeycomb plan: free has no Query Data API, so per-span checks are unverifiable",
    )
    verify = run.add_argument_group("verification")
    _verification_flags(verify)
    run.add_argument("locust_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    ver = sub.add_parser(
        "verify",
        help="verify a finished run again, without sending load",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("run_dir", type=Path, help="a run directory, e.g. reports/latest")
    _verification_flags(ver, with_expect=False)

    stack = sub.add_parser("stack", help="the local backends")
    stack_sub = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = stack_sub.add_parser("up", help="run the local stack in the foreground (Ctrl-C stops it)")
    defaults = local.LocalPorts()
    up.add_argument("--host", default=local.LOCAL_HOST, help="address to bind (default 127.0.0.1, loopback only)")
    up.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".tracedrill/stack"),
        help="where accepted telemetry is kept across restarts (default .tracedrill/stack)",
    )
    for name, port in vars(defaults).items():
        up.add_argument(
            f"--{name.replace('_', '-')}-port",
            type=int,
            default=port,
            dest=f"port_{name}",
            help=f"port of the {name.replace('_', ' ')} emulator (default {port}; 0 picks a free one)",
        )
    up.add_argument("--honeycomb-plan", choices=("enterprise", "free"), default="enterprise")
    return parser


def _verification_flags(group: argparse._ActionsContainer, with_expect: bool = True) -> None:
    if with_expect:
        group.add_argument(
            "--expect",
            type=Path,
            default=None,
            metavar="FILE",
            help="expectations file (TOML) describing what the service emits per route "
            "(default: the bundled Cruddur expectations)",
        )
    group.add_argument(
        "--settle",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="a backend is complete when its counts stay unchanged this long (default 8)",
    )
    group.add_argument(
        "--deadline",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="stop waiting for a backend after this long (default 120)",
    )
    group.add_argument(
        "--fail-on-unverifiable",
        action="store_true",
        help="exit 1 when a check cannot be decided (e.g. Honeycomb without the Query Data API)",
    )
    group.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run directories go")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    from tracedrill.drill import UsageError

    try:
        if args.command == "run":
            return _run(args, console)
        if args.command == "verify":
            return _verify(args, console)
        return _stack_up(args, console)
    except UsageError as exc:
        console.out(f"tracedrill: error: {exc}")
        return 2
    except KeyboardInterrupt:
        console.out("tracedrill: interrupted")
        return 130


def _options(args: argparse.Namespace, plan: LoadPlan | None = None):  # type: ignore[no-untyped-def]
    from tracedrill.drill import DrillOptions
    from verifiers.expectations import DEFAULT_EXPECTATIONS
    from verifiers.polling import WaitSettings

    try:
        wait = WaitSettings(settle_s=args.settle, deadline_s=args.deadline)
    except ValueError as exc:
        from tracedrill.drill import UsageError

        raise UsageError(str(exc)) from exc
    options = DrillOptions(
        wait=wait,
        reports_dir=args.reports_dir,
        fail_on_unverifiable=args.fail_on_unverifiable,
        expectations=getattr(args, "expect", None) or DEFAULT_EXPECTATIONS,
    )
    if plan is not None:
        options.plan = plan
    return options


def _run(args: argparse.Namespace, console: Console) -> int:
    from tracedrill.drill import run_drill

    extra = list(args.locust_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    plan = LoadPlan(args.users, args.spawn_rate, args.run_time, args.locustfile, tuple(extra))
    options = _options(args, plan)
    options.backends = args.backends
    options.target = args.target
    options.app_workers = args.app_workers
    options.disable = tuple(x.strip() for x in args.disable.split(",") if x.strip())
    options.honeycomb_plan = args.honeycomb_plan
    return run_drill(options, console)


def _verify(args: argparse.Namespace, console: Console) -> int:
    from tracedrill.drill import reverify

    return reverify(args.run_dir.resolve(), _options(args), console)


def _stack_up(args: argparse.Namespace, console: Console) -> int:
    from emulators.stack import LocalStack, StackConfig, app_environment, verifier_environment

    ports = local.LocalPorts(**{name: getattr(args, f"port_{name}") for name in vars(local.LocalPorts())})
    config = StackConfig(data_dir=args.data_dir, host=args.host, ports=ports, honeycomb_plan=args.honeycomb_plan)
    stack = LocalStack(config)
    try:
        endpoints = stack.start()
    except OSError as exc:
        console.out(
            f"tracedrill: error: cannot start the local stack: {exc} (is another stack running? "
            "pick other ports with --*-port, or 0 for free ones)"
        )
        return 2
    console.out(f"local stack up on {args.host}; data in {args.data_dir}")
    console.out("\n# environment for your app (real variable names; these local credentials only open the emulators):")
    for key, value in app_environment(endpoints).items():
        console.out(f"export {key}={value}")
    console.out("\n# environment for verifying against it:")
    for key, value in verifier_environment(endpoints).items():
        console.out(f"export {key}={value}")
    console.out("\nCtrl-C stops the stack.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        stack.stop()
        console.out("local stack stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
