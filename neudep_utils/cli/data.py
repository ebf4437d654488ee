"""``data``: verify, or download from their public origin, every image and weight a profile needs
(the command itself is :mod:`neudep_utils.origins.command`)."""

from __future__ import annotations

import argparse

from ..origins import command as origins_command


def add_parser(sub) -> None:
    """The ``data`` subcommand and its options."""
    origins_command.add_parser(sub)


def run(args: argparse.Namespace) -> int:
    """Run ``data``; returns the exit status."""
    return origins_command.cmd_data(args)
