"""``dcsbench`` command line: one entry point, subcommands registered by ``dcsbench.commands.*``.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` that adds its
subcommands and sets ``func`` (called with the parsed namespace, returns an exit code).
Heavy imports (torch, dm_control, datasets) happen inside the command functions so that
``dcsbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from dcsbench import __version__

#: Modules contributing subcommands, in help order.
COMMAND_MODULES = (
    "dcsbench.commands.envs",      # show-env
    "dcsbench.commands.experts",   # train-expert, expert-eval, collect
    "dcsbench.commands.data",      # list, info, download, verify, build, publish, import-hdf5
    "dcsbench.commands.runs",  # run, sweep, score, reference, quickstart
    "dcsbench.commands.study",     # study
    "dcsbench.commands.board",     # validate, leaderboard build|publish
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all registered subcommands)."""
    parser = argparse.ArgumentParser(
        prog="dcsbench",
        description="Distracting Control Suite benchmark for latent action learning.")
    parser.add_argument("--version", action="version", version=f"dcsbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as err:
            if err.name != mod_name:
                raise
            continue  # module not written yet in this checkout
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dcsbench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `dcsbench list | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, FileNotFoundError, PermissionError) as err:
        # User errors (unknown names, bad files) get one clear line, not a traceback.
        print(f"dcsbench {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
