"""The one command-line convention for config overrides, shared by every command.

Overrides are ``KEY VALUE`` pairs (``NUM_GPUS 8 TRAIN.BATCH_SIZE 64``), as PySlowFast takes them:
trailing on the command line, after ``--opts``, or both (trailing ones first). A command that
takes a list (``--cfg FILE ...``, videos) may be followed by overrides directly: the first token
that looks like a config key and is not an existing path ends the list. Usage::

    parser = argparse.ArgumentParser()
    parser.add_argument("--cfg", dest="cfg_files", nargs="+", required=True)
    add_overrides(parser)
    args = parse_with_overrides(parser, argv, after="cfg_files")  # args.opts: [KEY, VALUE, ...]
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Optional, Sequence

from vov3d.config import ConfigError, override_pairs

_KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*")


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """``--opts KEY VALUE ...``; ``parse_with_overrides`` adds the trailing pairs to the same list."""
    parser.add_argument(
        "--opts",
        nargs=argparse.REMAINDER,
        default=[],
        metavar="KEY VALUE",
        help="config overrides, e.g. NUM_GPUS 8 (the same as KEY VALUE pairs at the end)",
    )


def looks_like_key(token: str) -> bool:
    """``NUM_GPUS``, ``TRAIN.BATCH_SIZE``: an upper-case dotted name that is not an existing path."""
    return bool(_KEY.fullmatch(token)) and not os.path.exists(token)


def parse_with_overrides(
    parser: argparse.ArgumentParser,
    argv: Optional[Sequence[str]] = None,
    after: Optional[str] = None,
    optional: bool = False,
) -> argparse.Namespace:
    """Parse ``argv``; ``args.opts`` gets every override: those ending the list argument ``after``
    (a ``dest`` with ``nargs="+"``), the trailing tokens, then those after ``--opts``. A parser (or
    the chosen sub-command) without ``add_overrides`` takes none. Exits 2 with a usage error for an
    unknown flag, an odd count, or overrides where the list needs its first item (unless the list
    is ``optional``: ``nargs="*"``)."""
    args, extra = parser.parse_known_args(argv)
    flags = [token for token in extra if token.startswith("-") and not _is_number(token)]
    head: list[str] = []
    if after is not None:
        items = getattr(args, after)
        split = next((i for i, token in enumerate(items) if looks_like_key(token)), len(items))
        if split == 0 and items and not optional:
            item = after.rstrip("s").replace("_", " ")  # cfg_files -> cfg file, videos -> video
            parser.error(f"expected a {item} before the KEY VALUE overrides, got {items[0]!r} first")
        setattr(args, after, items[:split])
        head = items[split:]
    if flags or (extra and not hasattr(args, "opts")):
        parser.error(f"unrecognized arguments: {' '.join(flags or extra)}")
    args.opts = head + extra + list(getattr(args, "opts", []))
    try:
        override_pairs(args.opts)
    except ConfigError as e:
        parser.error(str(e))
    return args


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
