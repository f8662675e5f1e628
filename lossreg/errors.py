"""Error classes. Every user mistake is a :class:`LossregError` (a ``ValueError``).

Each class keeps its facts as attributes (so tools can act on them) and renders one message
that names the loss, the parameter or tensor, and the value at fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CliError",
    "ConfigError",
    "ConfigFileError",
    "ConfigProblem",
    "DuplicateLossError",
    "ExpressionError",
    "LossregError",
    "PluginError",
    "ShapeError",
    "UnknownLossError",
    "format_shape",
]


class LossregError(ValueError):
    """Base of every error lossreg raises for a user's mistake.

    ``hint`` (empty unless given) says what to do; the command line prints it under the error.
    """

    def __init__(self, *args: object, hint: str = "") -> None:
        super().__init__(*args)
        self.hint = hint


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
    #: the error behind this problem, kept with its facts (an unknown name's suggestions)
    cause: LossregError | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:  # one line: keys and messages may carry newlines
        where = f"{_clean(self.path, 200)}: " if self.path else ""
        who = f"[{_clean(self.loss, 80)}] " if self.loss else ""
        given = "" if self.value is ... else f" (got {_short(self.value)})"
        return f"{where}{who}{_clean(self.message, 600)}{given}"


class ConfigError(LossregError):
    """Every problem found in a config, reported at once (``problems``).

    Takes a list of problems, one problem, or a message; :meth:`single` raises one problem
    in one line:

    >>> raise ConfigError.single("terms.a.gamma", "must be >= 0", value=-1.0, loss="focal")
    Traceback (most recent call last):
    ...
    lossreg.errors.ConfigError: invalid config: terms.a.gamma: [focal] must be >= 0 (got -1.0)
    """

    def __init__(self, problems: Sequence[ConfigProblem] | ConfigProblem | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("", problems)]
        elif isinstance(problems, ConfigProblem):
            problems = [problems]
        self.problems = list(problems)
        if len(self.problems) == 1:
            msg = f"invalid config: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            msg = f"invalid config ({len(self.problems)} problems):\n{lines}"
        super().__init__(msg)

    @classmethod
    def single(
        cls, path: str, message: str, *, value: Any = ..., loss: str | None = None
    ) -> ConfigError:
        """A config error holding one problem: ``raise ConfigError.single(path, message)``."""
        return cls(ConfigProblem(path, message, loss, value))

    @property
    def unknown_losses(self) -> list[UnknownLossError]:
        """The unknown names behind these problems (each with its ``suggestions``)."""
        return [p.cause for p in self.problems if isinstance(p.cause, UnknownLossError)]


class ShapeError(LossregError):
    """A tensor of the wrong shape; carries ``loss`` and ``shapes`` (argument -> shape), and
    ``expected`` (a pattern such as ``"(*, 4)"``) when one shape is checked against a layout.

    >>> err = ShapeError("mse: shapes differ", loss="mse", shapes={"input": (3,), "target": (3, 1)})
    >>> err.shapes["target"]
    (3, 1)
    """

    def __init__(
        self,
        message: str,
        *,
        loss: str | None = None,
        shapes: Mapping[str, Sequence[int]] | None = None,
        expected: str | None = None,
    ) -> None:
        self.loss = loss
        self.shapes = {k: tuple(int(d) for d in v) for k, v in (shapes or {}).items()}
        self.expected = expected
        super().__init__(message)


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


class CliError(LossregError):
    """A usage error of the command line (no such tag, some configs invalid) with a hint."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)


class ConfigFileError(CliError):
    """A config file that cannot be read as plain YAML data; ``hint`` says what to do."""


def format_shape(shape: Sequence[int]) -> str:
    """A shape as error messages write it: ``(3,)``, ``(2, 3)``, ``()``.

    >>> import torch
    >>> format_shape(torch.zeros(2, 3).shape)
    '(2, 3)'
    """
    return str(tuple(int(d) for d in shape))


def _clean(text: str, limit: int) -> str:
    """``text`` on one line (control characters escaped), cut to ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
