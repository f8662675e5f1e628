"""Printing and writing for the command line, safely: text printed literally (Rich markup
and control characters escaped), output files never overwritten or written through a
symbolic link without ``--force``, every user mistake one ``error:`` line and a ``hint:``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape as _escape_markup

from ..errors import CliError

__all__ = [
    "CliError",
    "err",
    "escape",
    "hint_for",
    "needs_matplotlib",
    "out",
    "report",
    "say",
    "writable",
]


def _width(stream: Any) -> int | None:
    """Terminal width on a terminal or with $COLUMNS; 120 columns when piped (not 80)."""
    import os

    return None if os.environ.get("COLUMNS") or stream.isatty() else 120


out = Console(highlight=False, width=_width(sys.stdout))
err = Console(stderr=True, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """``text`` printed literally: Rich markup escaped, control characters (terminal escape
    sequences, newlines) shown as ``\\x1b``-style escapes, never sent to the terminal."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return _escape_markup(text)


def say(console: Any, text: str) -> None:
    """Print a plain line exactly (a path, a command): no markup, no wrapping."""
    console.print(escape(text), soft_wrap=True)


def writable(path: Path, force: bool, *, png: bool = False) -> Path:
    """The path a command will write, checked before any work: never an existing file or a
    symbolic link unless ``--force``, never a directory; a PNG output ends in ``.png``."""
    if png:
        if path.suffix.lower() not in ("", ".png"):
            raise CliError(
                f"--output {path} is not a .png file; the plot is written as PNG",
                "pass a name ending in .png, e.g. -o losses.png",
            )
        path = path if path.suffix else path.with_suffix(".png")
    if path.is_dir():
        raise CliError(f"--output {path} is a directory", "pass a file name")
    if not force and path.is_symlink():
        raise CliError(
            f"--output {path} is a symbolic link; nothing was written",
            "pass --force to write through it, or choose another name",
        )
    if not force and path.exists():
        raise CliError(
            f"--output {path} already exists; nothing was written",
            "pass --force to overwrite it, or choose another name",
        )
    return path


def needs_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise CliError(
            "this command needs matplotlib, which is not installed",
            "pip install 'lossreg[cli]'",
        )


# -- errors ----------------------------------------------------------------------------------
def hint_for(exc: BaseException) -> str:
    from ..errors import (
        ConfigError,
        DuplicateLossError,
        ExpressionError,
        LossregError,
        PluginError,
        UnknownLossError,
    )

    hint = getattr(exc, "hint", "")
    if hint:
        return str(hint)
    if isinstance(exc, UnknownLossError) or (isinstance(exc, ConfigError) and exc.unknown_losses):
        return "`lossreg list` shows the registered losses; `lossreg plugins` what is installed"
    if isinstance(exc, ConfigError):
        losses = list(dict.fromkeys(p.loss for p in exc.problems if p.loss))
        show = f"`lossreg show {losses[0]}`" if len(losses) == 1 else "`lossreg show NAME`"
        return f"{show} lists the parameters; `lossreg schema` gives a JSON Schema for editors"
    if isinstance(exc, ExpressionError):
        return "expressions use numbers, names, + - * /, unary minus and parentheses"
    if isinstance(exc, (PluginError, DuplicateLossError)):
        return "`lossreg plugins` shows each plugin and its status"
    if isinstance(exc, LossregError):
        return ""
    return "rerun with --debug for the full traceback"


def report(exc: BaseException, prefix: str = "") -> None:
    from ..errors import LossregError

    text = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, (LossregError, CliError, OSError)):
        text = f"{type(exc).__name__}: {text}"
    first, _, rest = text.partition("\n")
    err.print(f"[bold red]error:[/bold red] {escape(prefix + first)}")
    for line in rest.splitlines():
        err.print(escape(line), soft_wrap=True)
    text_hint = hint_for(exc)
    if text_hint:
        err.print(f"[dim]hint:[/dim] {escape(text_hint)}")
