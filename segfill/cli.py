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


#: third-party warnings that tell a SegFill user nothing (about the libraries' own internals): (category, message
#: regex). torch < 2.4 warns on every ``torch.load`` of a checkpoint saved by another version.
QUIET_WARNINGS = (
    (UserWarning, r"TypedStorage is deprecated"),
)


def quiet_known_warnings() -> None:
    """Hide :data:`QUIET_WARNINGS` (the command line's output is for the user; the engine's API is untouched)."""
    import warnings

    for category, message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def _command_name(argv: Sequence[str] | None) -> str:
    """The command word of ``argv`` (for messages before the parser has run)."""
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    return words[0] if words else "command"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a :class:`SegFillError` is one line and exit 2, Ctrl+C one line and exit 130."""
    quiet_known_warnings()
    command = _command_name(argv)
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        return int(args.func(args) or 0)
    except SegFillError as exc:
        print(f"segfill {command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"segfill {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
