"""Command line: ``python -m neudep_utils {extract,merge,covariance,logits,fit,data} ...``.

Examples::

    python -m neudep_utils extract --model efficientnet_lite0 --data ../shared/data/imagenet-val
    python -m neudep_utils extract --onnx resnet18.onnx --preset imagenet --data FOLDER --out X.npy
    python -m neudep_utils fit --logits X.npy --k 3 --targets 0 1 --out deps.csv
    python -m neudep_utils extract --model lite0 --data /imagenet/train --mode moments --shard 0/8
    python -m neudep_utils merge --model lite0 --data /imagenet/train --mode moments --shards 8
    torchrun --nproc-per-node 8 -m neudep_utils extract --model lite0 --data /imagenet/train \\
        --mode moments
    python -m neudep_utils logits --profile default
    python -m neudep_utils data --profile smoke

Every failure prints one ``error: ...`` line naming the input and the fix and exits non-zero
(2 for a bad input, 130 on Ctrl-C, 1 for an unexpected error; ``NEUDEP_DEBUG=1`` shows its
traceback). Warnings print as ``warning: ...`` lines.

One module per command (``extract``, ``merge``, ``covariance``, ``logits``, ``fit``, ``data``), each with
``add_parser(subparsers)`` and ``run(args)``; ``_common`` holds what they share.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .. import __version__
from . import covariance, data, extract, fit, logits, merge
from ._common import Parser, fail, show_warning

__all__ = ["main"]

#: The subcommands, in the order ``--help`` lists them.
COMMANDS = {"extract": extract, "merge": merge, "covariance": covariance, "logits": logits,
            "fit": fit, "data": data}


def _parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m neudep_utils", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"neudep-utils {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, parser_class=Parser)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m neudep_utils`` (and the ``neudep`` script).

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit code: 0 success, 2 bad input (one ``error: ...`` line on stderr), 130
        interrupted, 1 unexpected error.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    debug = os.environ.get("NEUDEP_DEBUG", "") not in ("", "0")
    old_show = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        rc = COMMANDS[args.cmd].run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - one line, not a traceback
        return fail(exc, debug)
    finally:
        warnings.showwarning = old_show


if __name__ == "__main__":
    sys.exit(main())
