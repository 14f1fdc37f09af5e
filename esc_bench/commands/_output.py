"""Shared by the analysis subcommands: a console sized for pipes, writing results to a file or stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from esc_bench.errors import UserError
from esc_bench.files import write_atomic

if TYPE_CHECKING:
    import argparse

def write_text(text: str, path: Path | None) -> None:
    """To `path` (parents made), or to stdout when path is None or '-'."""
    if path is None or str(path) == "-":
        from esc_bench.redact import redact

        sys.stdout.write(redact(text))
        sys.stdout.flush()
        return
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name")
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)


def write_json(obj: Any, path: Path | None) -> None:
    write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", path)


FORMATS = ("console", "md", "json", "html")
_SUFFIX = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html"}


def add_format_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--format and -o: the one convention of every command that writes a result."""
    parser.add_argument("--format", choices=FORMATS,
                        help="console (default), md, json or html; with -o FILE and no --format, the file's suffix")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help=f"write the {what} here (default stdout)")


def output_format(args: argparse.Namespace) -> str:
    """The format asked for: --format, else the suffix of -o FILE, else console."""
    fmt = getattr(args, "format", None)
    out = getattr(args, "output", None)
    if fmt is None and out is not None and str(out) != "-":
        fmt = _SUFFIX.get(Path(out).suffix.lower())
        if fmt is None:
            raise UserError(f"cannot tell the format from {out}; give --format md|json|html")
    fmt = fmt or "console"
    if fmt == "console" and out is not None and str(out) != "-":
        raise UserError("-o needs --format md, json or html")
    return fmt


def seed(text: str) -> int:
    """--seed: a whole number from 0 (numpy's generators take no negative seed)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
