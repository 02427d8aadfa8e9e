"""`tracedrill overhead`: what the instrumentation costs per request, the app with it on versus off."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from emulators.stack import LocalStack, StackConfig, app_environment
from target_app.server import start_target
from tracedrill import local, overhead
from tracedrill.console import Console
from tracedrill.drill import EXIT_USAGE, UsageError

DESCRIPTION = """\
Measure what instrumentation costs per request: the same app with every instrumentation on and
with all of it off, under the same server and the same load, in the same session.

By default it starts the bundled target twice under gunicorn (one instance with all four SDKs,
one with TRACEDRILL_DISABLE=otel,xray,cloudwatch,rollbar) against a fresh local stack, then loads
one instance at a time, route by route, with a closed-loop generator (no think time, the drill's
correlation headers), alternating on/off for --rounds rounds. For your own app, start it twice
yourself (instrumented and not) on 127.0.0.1 and pass --on URL --off URL --path PATH...

Per route it reports the maximum requests per second each instance sustained, their ratio, and
the CPU time the instance's processes (server and workers, including the SDKs' export threads)
used per request: the added CPU per request is what the instrumentation costs you."""

EPILOG = """\
The load generator runs on the same machine: req/s is what this machine sustains with it, while
CPU µs per request does not depend on it. Load goes to loopback addresses only. Exit codes: 0
measured; 2 usage error or an app that did not start."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "overhead",
        help="what instrumentation costs per request: req/s and CPU µs with it on vs off",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load = parser.add_argument_group("load")
    load.add_argument("--seconds", type=float, default=3.0, help="measured seconds per route and instance (default 3)")
    load.add_argument("--rounds", type=int, default=3, help="on/off rounds per route; medians are reported (default 3)")
    load.add_argument("--concurrency", type=int, default=8, help="concurrent connections, no think time (default 8)")
    load.add_argument(
        "--routes",
        default="",
        metavar="LIST",
        help="bundled target only: comma list of route names (default all: "
        + ", ".join(r.name for r in overhead.BUNDLED_ROUTES)
        + ")",
    )
    bundled = parser.add_argument_group("the bundled target")
    bundled.add_argument("--app-workers", type=int, default=2, help="gunicorn workers per instance (default 2)")
    bundled.add_argument("--app-threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    own = parser.add_argument_group("your own app (two instances you started)")
    own.add_argument("--on", metavar="URL", help="base URL of the instrumented instance, e.g. http://127.0.0.1:5001")
    own.add_argument("--off", metavar="URL", help="base URL of the same app with instrumentation off")
    own.add_argument("--path", action="append", default=[], metavar="PATH", help="a path to load (repeatable)")
    own.add_argument("--on-pid", type=int, help="process id of the instrumented server (its children count too)")
    own.add_argument("--off-pid", type=int, help="process id of the uninstrumented server")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every phase's figures as JSON")


def main(args: argparse.Namespace, console: Console) -> int:
    _validate(args)
    with _instances(args, console) as (on, off, routes):
        if args.on:
            _check_answering(on, off, routes, console)
        console.step(
            f"measuring {len(routes)} route(s): {args.rounds} round(s) x {args.seconds:g} s per instance, "
            f"{args.concurrency} connections"
        )
        figures = overhead.compare(
            on,
            off,
            routes,
            rounds=args.rounds,
            seconds=args.seconds,
            concurrency=args.concurrency,
            progress=console.step,
        )
    console.out("")
    console.out(overhead.render(overhead.table(figures)))
    silent = [f"{f.route} ({label})" for f in figures for label in ("on", "off") if not any(f.rps(label))]
    if silent:
        console.out(f"\ntracedrill: error: no answers at all from {', '.join(silent)}: an app stopped during the run")
        return EXIT_USAGE
    if on.pid is None or off.pid is None:
        console.out("\n(CPU per request needs --on-pid and --off-pid for apps you started yourself)")
    if args.json:
        overhead.write_json(args.json, figures)
        console.out(f"\nevery phase: {args.json}")
    return 0


def _check_answering(
    on: overhead.Instance, off: overhead.Instance, routes: Sequence[overhead.RouteLoad], console: Console
) -> None:
    """One request per instance and path before any load: an app that is not up is a usage error, not a
    table of zeros; an error status is measured (an error path costs too) but said, and so are on and off
    answering differently (then they do not run the same code)."""
    for route in routes:
        statuses = {}
        for instance in (on, off):
            url = instance.url + route.path
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise UsageError(
                    f"--{instance.label} {instance.url}: nothing answers {route.path} ({reason}); start the app first"
                ) from None
            statuses[instance.label] = status
            if status >= 400:
                console.out(f"note: {url} answers HTTP {status}: measuring that error path")
        if statuses["on"] != statuses["off"]:
            console.out(
                f"note: {route.path} answers HTTP {statuses['on']} on and {statuses['off']} off: the two instances "
                "do not run the same code, so their ratio is not the instrumentation's cost alone"
            )


def _validate(args: argparse.Namespace) -> None:
    if args.seconds <= 0 or args.rounds < 1 or not 1 <= args.concurrency <= 256:
        raise UsageError("--seconds must be > 0, --rounds >= 1 and --concurrency within 1..256")
    if bool(args.on) != bool(args.off):
        raise UsageError("--on and --off go together: the instrumented and the uninstrumented instance")
    if args.on:
        if not args.path:
            raise UsageError("with --on/--off, name at least one --path to load (e.g. --path /api/health)")
        for url in (args.on, args.off):
            if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
                raise UsageError(f"{url}: overhead sends load to loopback addresses only (http://127.0.0.1:PORT)")
    elif args.path or args.on_pid or args.off_pid:
        raise UsageError("--path, --on-pid and --off-pid are for --on/--off; the bundled target takes --routes")
    if args.app_workers < 1 or args.app_threads < 1:
        raise UsageError("--app-workers and --app-threads must be at least 1")


def _routes(names: str) -> list[overhead.RouteLoad]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {r.name: r for r in overhead.BUNDLED_ROUTES}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UsageError(f"--routes: unknown route(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in wanted] if wanted else list(overhead.BUNDLED_ROUTES)


@contextlib.contextmanager
def _instances(
    args: argparse.Namespace, console: Console
) -> Iterator[tuple[overhead.Instance, overhead.Instance, Sequence[overhead.RouteLoad]]]:
    if args.on:
        routes = [overhead.RouteLoad(p, p if p.startswith("/") else "/" + p) for p in args.path]
        yield (
            overhead.Instance("on", args.on.rstrip("/"), args.on_pid),
            overhead.Instance("off", args.off.rstrip("/"), args.off_pid),
            routes,
        )
        return
    routes = _routes(args.routes)
    with tempfile.TemporaryDirectory(prefix="tracedrill-overhead-") as tmp, contextlib.ExitStack() as stack:
        data = Path(tmp)
        console.step(f"starting the local backends (data in {data})")
        backends = stack.enter_context(LocalStack(StackConfig(data_dir=data, ports=local.LocalPorts.ephemeral())))
        env = {**os.environ, **app_environment(backends.endpoints)}
        targets = {}
        for label, instrumented in (("on", True), ("off", False)):
            console.step(f"starting the target with instrumentation {label} ({args.app_workers} gunicorn workers)")
            try:
                target = start_target(
                    overhead.target_env(env, instrumented),
                    0,
                    args.app_workers,
                    threads=args.app_threads,
                    log_path=data / f"target-{label}.log",
                )
            except RuntimeError as exc:
                raise UsageError(str(exc)) from exc
            stack.callback(target.stop)
            targets[label] = overhead.Instance(label, target.url, target.pid)
        yield targets["on"], targets["off"], routes
        console.step("stopping the targets and the local backends")
