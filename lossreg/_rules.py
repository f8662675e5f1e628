"""Registration rules that keep the registry sound: what a name may be, and no preset or
composite that reaches itself (it would recurse forever at build, describe, list, schema)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._registry import LossRecord

__all__ = ["NAME_RE", "find_cycle", "name_problem", "shown"]

#: names and aliases: ASCII identifiers, so none reads as arithmetic (``0-1``) or hijacks an
#: expression string, and none hides a look-alike letter, a space or a control character
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def shown(value: Any, limit: int = 80) -> str:
    """``repr`` of a value cut to ``limit`` characters (reprs escape control characters)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def name_problem(name: Any, aliases: Iterable[Any]) -> str | None:
    """What is wrong with a registration's name and aliases, or None.

    >>> name_problem("dice", ["Dice"]) is None
    True
    >>> name_problem("zero_one", ["0-1"])[:40]
    "alias of 'zero_one' '0-1' is not an ASCI"
    """
    if not isinstance(name, str) or not name:
        return f"a loss name must be a non-empty string, got {shown(name)}"
    if isinstance(aliases, str):
        return f"aliases of {shown(name)} must be a list of names, not a string"
    for n in (name, *aliases):
        if not isinstance(n, str) or not NAME_RE.match(n):
            what = "loss name" if n is name else f"alias of {shown(name)}"
            return (
                f"{what} {shown(n)} is not an ASCII identifier of at most 64 characters "
                "([A-Za-z_][A-Za-z0-9_]*); use e.g. 'my_loss'"
            )
    return None


def references(rec: LossRecord) -> list[str]:
    """Names a preset or composite builds on (as ``build`` resolves them)."""
    if rec.kind == "preset":
        return [rec.spec["name"]] if isinstance(rec.spec.get("name"), str) else []
    if rec.kind != "composite":
        return []
    from ._expr import names, parse

    terms = rec.spec.get("terms") or {}
    terms = terms if isinstance(terms, Mapping) else {}
    out = []
    for key in names(parse(rec.spec["expr"])):
        term = terms.get(key, key)
        name = term.get("name") if isinstance(term, Mapping) else term
        if isinstance(name, str):
            out.append(name)
    return out


def find_cycle(
    rec: LossRecord, records: Mapping[str, LossRecord], names: Mapping[str, str]
) -> str | None:
    """The cycle through ``rec`` (``"a -> b -> a"``) if its references reach it, else None."""
    path = [rec.name]

    def visit(current: LossRecord) -> str | None:
        for ref in references(current):
            canonical = names.get(ref)
            if canonical is None:
                continue  # not registered (yet): build reports an unknown loss
            if canonical == rec.name:
                return " -> ".join([*path, ref])
            if canonical in path:
                continue  # a cycle not through ``rec``: refused when it was registered
            path.append(canonical)
            found = visit(records[canonical])
            path.pop()
            if found:
                return found
        return None

    return visit(rec)
