"""`tracedrill stack up`: the local backends in the foreground."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import signal
import sys
import time
from pathlib import Path

from emulators.stack import (
    DEFAULT_DATA_DIR,
    DEFAULT_SAMPLING_RULES,
    LocalStack,
    StackConfig,
    app_environment,
    verifier_environment,
    write_endpoints,
)
from emulators.xray.sampling import SamplingRulesError
from tracedrill import local
from tracedrill.console import Console
from tracedrill.rundir import HONEYCOMB_PLANS


def _port(text: str) -> int:
    """A TCP/UDP port number, 0 for any free one: argparse turns the ValueError into a usage error (exit 2)."""
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def _host(text: str) -> str:
    """An address to bind: an IP literal (brackets around IPv6 allowed, as in URLs) or localhost."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if bare == "localhost":
        return bare
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IP address: give one this machine has, such as 127.0.0.1 or ::1"
        ) from None


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    stack = subparsers.add_parser("stack", help="the local backends")
    actions = stack.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="run the local stack in the foreground (Ctrl-C stops it)")
    up.add_argument(
        "--host",
        type=_host,
        default=local.LOCAL_HOST,
        help="address to bind (default 127.0.0.1, loopback only; with an IPv6 address the X-Ray daemon still "
        "binds 127.0.0.1, the only kind of address the X-Ray SDK can send to)",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where accepted telemetry is kept across restarts (default {DEFAULT_DATA_DIR}); while the stack "
        "runs, its endpoints are in endpoints.json there, for `tracedrill run --backends stack`",
    )
    for name, port in vars(local.LocalPorts()).items():
        up.add_argument(
            f"--{name.replace('_', '-')}-port",
            type=_port,
            default=port,
            dest=f"port_{name}",
            help=f"port of the {name.replace('_', ' ')} emulator (default {port}; 0 picks a free one)",
        )
    up.add_argument(
        "--xray-rule",
        type=Path,
        default=DEFAULT_SAMPLING_RULES,
        metavar="FILE",
        help="the X-Ray sampling rules the emulator serves (CreateSamplingRule JSON or a SamplingRules list); "
        "default: the bundled Cruddur rule, which only matches service backend-flask",
    )
    up.add_argument(
        "--honeycomb-plan",
        choices=HONEYCOMB_PLANS,
        default="enterprise",
        help="free: the Query Data API answers as on a plan without it",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    ports = local.LocalPorts(**{name: getattr(args, f"port_{name}") for name in vars(local.LocalPorts())})
    config = StackConfig(
        data_dir=args.data_dir,
        host=args.host,
        ports=ports,
        honeycomb_plan=args.honeycomb_plan,
        sampling_rules=args.xray_rule,
    )
    stack = LocalStack(config)
    try:
        endpoints = stack.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            hint = "is another stack running? pick other ports with --*-port, or 0 for free ones"
        elif exc.filename is not None:  # the data directory (or a file in it) cannot be made or opened
            hint = "check --data-dir: it must be a directory this user can write, or not exist yet"
        else:
            hint = f"is {args.host} an address of this machine? check --host"
        console.out(f"tracedrill: error: cannot start the local stack: {exc} ({hint})")
        return 2
    except SamplingRulesError as exc:
        console.out(f"tracedrill: error: --xray-rule: {exc}")
        return 2
    # SIGHUP: its terminal closed. Either way, stop as on Ctrl-C, so endpoints.json goes with the stack.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    try:
        endpoints_file = write_endpoints(args.data_dir, endpoints)
    except OSError as exc:
        stack.stop()
        console.out(f"tracedrill: error: cannot write the stack's endpoints: {exc} (check --data-dir)")
        return 2
    try:  # however the stack ends, endpoints.json must not outlive it
        console.out(f"local stack up on {args.host}; data in {args.data_dir}")
        console.out(
            "\n# environment for your app (real variable names; these local credentials only open the emulators):"
        )
        for key, value in app_environment(endpoints).items():
            console.out(f"export {key}={value}")
        console.out("\n# environment for verifying against it:")
        for key, value in verifier_environment(endpoints).items():
            console.out(f"export {key}={value}")
        console.out("\nCtrl-C stops the stack.")
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        endpoints_file.unlink(missing_ok=True)
        stack.stop()
        console.out("local stack stopped")
    return 0
