"""One module per `tracedrill` subcommand, each with ``add_parser(subparsers)`` and ``main(args, console)``.

To add a command: write ``commands/<name>.py`` with those two functions and list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Protocol

from tracedrill.commands import budget, mutants, overhead, run, stack, ui, verify
from tracedrill.console import Console


class Command(Protocol):
    def add_parser(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...

    def main(self, args: argparse.Namespace, console: Console) -> int: ...


COMMANDS: dict[str, ModuleType] = {"run": run, "verify": verify, "stack": stack}
COMMANDS["budget"] = budget
COMMANDS["ui"] = ui
COMMANDS["mutants"] = mutants
COMMANDS["overhead"] = overhead
