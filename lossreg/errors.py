"""Error classes. Every user mistake is a :class:`LossregError` (a ``ValueError``).

Each class keeps its facts as attributes (so tools can act on them) and renders one message
that names the loss, the parameter or tensor, and the value at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DuplicateLossError",
    "ExpressionError",
    "LossregError",
    "PluginError",
    "UnknownLossError",
]


class LossregError(ValueError):
    """Base of every error lossreg raises for a user's mistake."""


class UnknownLossError(LossregError, KeyError):
    """A name that no plugin registered; carries ``suggestions`` (closest registered names)."""

    def __init__(self, name: str, suggestions: Sequence[str] = (), *, where: str = "") -> None:
        self.name = name
        self.suggestions = list(suggestions)
        msg = f"unknown loss {name!r}{where}"
        if self.suggestions:
            msg += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        else:
            msg += "; `lossreg list` shows every registered loss"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config: where it is, which loss, what is wrong, what was given."""

    path: str
    message: str
    loss: str | None = None
    value: Any = ...

    def __str__(self) -> str:  # one line: keys and messages may carry newlines
        where = f"{_clean(self.path, 200)}: " if self.path else ""
        who = f"[{_clean(self.loss, 80)}] " if self.loss else ""
        given = "" if self.value is ... else f" (got {_short(self.value)})"
        return f"{where}{who}{_clean(self.message, 600)}{given}"


class ConfigError(LossregError):
    """Every problem found in a config, reported at once (``problems``)."""

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("", problems)]
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = f"invalid config: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            msg = f"invalid config ({len(self.problems)} problems):\n{lines}"
        super().__init__(msg)


class ExpressionError(LossregError):
    """A loss expression that does not parse or resolve; points at the column."""

    def __init__(self, message: str, expr: str = "", pos: int | None = None) -> None:
        self.expr = expr
        self.pos = pos
        self.reason = message
        text = message
        if expr and pos is not None and len(expr) <= 200:
            text += f" at column {pos + 1}:\n  {expr}\n  {' ' * pos}^"
        elif pos is not None:
            text += f" at column {pos + 1}"
        super().__init__(text)


class PluginError(LossregError):
    """A plugin that failed to load (strict mode) or registered something invalid."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        self.plugin = plugin
        super().__init__(message)


class DuplicateLossError(LossregError):
    """One name or alias claimed by two providers without ``override=True``."""

    def __init__(self, name: str, first: str, second: str) -> None:
        self.name, self.first, self.second = name, first, second
        super().__init__(
            f"loss name {name!r} is registered by {first} and again by {second}; "
            "rename one, or pass override=True in the later registration"
        )


def _clean(text: str, limit: int) -> str:
    """``text`` on one line (control characters escaped), cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
