"""``python -m segfill <command>``: the command line front end.

Each command lives next to the code it drives and exposes ``register(subparsers)``; the command function
it sets as ``func`` receives the parsed namespace and returns an exit code. A :class:`SegFillError` becomes
one line on stderr and exit code 2; other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from segfill.errors import SegFillError

# (module, command) pairs; modules are imported lazily so a missing optional package breaks one command only.
COMMAND_MODULES = (
    ("segfill.sam.cli", "mask"),
    ("segfill.sam.download", "download"),
    ("segfill.outpaint.cli", "outpaint"),
    ("segfill.outpaint.cli", "inpaint"),
    ("segfill.ui.cli", "serve"),
    ("segfill.batch", "batch"),
    ("segfill.batch", "replay"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m segfill", description="SegFill: click-to-mask, inpaint, outpaint.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    registered: set[str] = set()
    for module_name, _command in COMMAND_MODULES:
        if module_name in registered:
            continue
        registered.add(module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:  # keep the other commands usable
            if exc.name and exc.name.startswith("segfill"):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SegFillError as exc:
        print(f"segfill {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"segfill {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
