"""Loss expressions such as ``0.5*dice + bce``: a tokenizer and a small recursive-descent
parser of our own. Nothing is ever evaluated by Python; the tree holds numbers and names only.

Grammar (ASCII only)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := "-" unary | atom
    atom   := NUMBER | NAME | "(" expr ")"

Length, nesting depth and name count are capped *before* recursion can blow up, so a
pathological input is an :class:`ExpressionError` in microseconds.

The tree is shallow and constant-free where it can be, so whatever parses also forwards,
pickles, deep-copies and compiles: constant sub-expressions are folded (a zero or non-finite
divisor or a non-finite result is an error), the constants of one ``+ -`` or ``* /`` chain
are combined into one, a long chain is balanced (``a+b+...`` of 1000 terms is 10 levels
deep, not 1000), and the resulting depth is capped (``MAX_TREE_DEPTH``). An expression that
names no loss is refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Union

from .errors import ExpressionError

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NAMES",
    "MAX_TREE_DEPTH",
    "Bin",
    "Name",
    "Neg",
    "Num",
    "names",
    "parse",
]

MAX_LENGTH = 4096
MAX_DEPTH = 64  # parentheses and unary minus signs nested
MAX_NAMES = 256  # name occurrences in one expression
# levels of the folded, balanced tree: evaluation recurses this deep, and torch.compile's
# tracer fails near 100 levels (about 8 Python frames per level)
MAX_TREE_DEPTH = 64
_CHAIN = 8  # chains up to this many operands stay left-associative, as written


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Name:
    id: str
    pos: int = 0

    def __eq__(self, other: object) -> bool:  # position is not part of the meaning
        return isinstance(other, Name) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class Bin:
    op: str
    left: Node
    right: Node


Node = Union[Num, Name, Neg, Bin]  # noqa: UP007 - dataclass forward refs need the alias

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>[-+*/()]))"
)
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad_at = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            ch = text[bad_at]
            raise ExpressionError(_unexpected(ch), text, bad_at)
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


def _unexpected(ch: str) -> str:
    if not ch.isascii():
        return f"non-ASCII character {ch!r} (U+{ord(ch):04X}) is not allowed"
    hints = {
        ".": "attribute access is not allowed",
        "[": "subscripts are not allowed",
        "'": "strings are not allowed",
        '"': "strings are not allowed",
        "<": "comparisons are not allowed",
        ">": "comparisons are not allowed",
        "=": "comparisons and assignments are not allowed",
        ",": "calls are not allowed",
        "%": "only + - * / are allowed",
        "@": "only + - * / are allowed",
    }
    return hints.get(ch) or f"unexpected character {ch!r}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.names = 0

    def error(self, message: str, pos: int | None = None) -> ExpressionError:
        if pos is None:
            pos = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text.rstrip())
        return ExpressionError(message, self.text, pos)

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("empty expression", 0)
        node = self.expr()
        tok = self.peek()
        if tok is not None:
            what = "a call" if tok[1] == "(" else f"{tok[1]!r}"
            raise self.error(f"unexpected {what}; expected an operator or the end")
        return node

    def expr(self) -> Node:
        chain: list[tuple[str, Node, int]] = [("+", self.term(), 0)]
        while (tok := self.peek()) is not None and tok[1] in "+-" and tok[0] == "op":
            self.i += 1
            chain.append((tok[1], self.term(), tok[2]))
        return self.chain(chain, "+")

    def term(self) -> Node:
        chain: list[tuple[str, Node, int]] = [("*", self.unary(), 0)]
        while (tok := self.peek()) is not None and tok[1] in "*/" and tok[0] == "op":
            self.i += 1
            if self.peek() is not None and self.peek()[1] == "*":  # type: ignore[index]
                raise self.error("power (**) is not allowed")
            right = self.unary()
            if tok[1] == "/" and isinstance(right, Num) and right.value == 0:
                raise self.error("division by zero", tok[2])
            chain.append((tok[1], right, tok[2]))
        return self.chain(chain, "*")

    def chain(self, items: list[tuple[str, Node, int]], plus: str) -> Node:
        """One ``+ -`` (``plus="+"``) or ``* /`` chain: its constants combined into one
        leading constant when there are two or more, then built as a shallow tree."""
        consts = [(op, n.value, pos) for op, n, pos in items if isinstance(n, Num)]
        if len(consts) >= 2 or len(consts) == len(items) > 1:
            value = 0.0 if plus == "+" else 1.0
            for op, v, pos in consts:
                value = self.fold(op, value, v, pos)
            rest = [item for item in items if not isinstance(item[1], Num)]
            items = [(plus, Num(value), 0), *rest]
        return _balance(items)

    def fold(self, op: str, a: float, b: float, pos: int) -> float:
        if op == "/" and b == 0:
            raise self.error("division by zero", pos)
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]
        if not math.isfinite(value):
            raise self.error(f"the constants combine to {value}, which is not finite", pos)
        return value

    def nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nests deeper than {MAX_DEPTH} levels", pos)

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] == "-":
            self.i += 1
            self.nest(tok[2])
            operand = self.unary()
            self.depth -= 1
            if isinstance(operand, Neg):  # --x is x, exactly
                return operand.operand
            return Num(-operand.value) if isinstance(operand, Num) else Neg(operand)
        return self.atom()

    def atom(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.error("expression ends early; expected a number, a name or '('")
        kind, text, pos = tok
        self.i += 1
        if kind == "num":
            value = float(text)
            if not math.isfinite(value):
                raise self.error(f"number {text} is not finite", pos)
            return Num(value)
        if kind == "name":
            self.names += 1
            if self.names > MAX_NAMES:
                raise self.error(f"more than {MAX_NAMES} names in one expression", pos)
            return Name(text, pos)
        if text == "(":
            self.nest(pos)
            node = self.expr()
            close = self.peek()
            if close is None or close[1] != ")":
                raise self.error("missing ')' for the '(' opened here", pos)
            self.i += 1
            self.depth -= 1
            return node
        raise self.error(f"unexpected {text!r}; expected a number, a name or '('", pos)


def _balance(items: list[tuple[str, Node, int]]) -> Node:
    """``a0 op1 a1 op2 a2 ...`` (the first op is the chain's identity op) as a tree: as
    written (left-associative) when short, else split in the middle, flipping the operators
    of the right half when the split is at ``-`` or ``/`` (``a - b + c == a - (b - c)``)."""
    if len(items) <= _CHAIN:
        node = items[0][1]
        for op, operand, _ in items[1:]:
            node = Bin(op, node, operand)
        return node
    mid = len(items) // 2
    op = items[mid][0]
    right = items[mid:]
    if op in "-/":
        flip = {"+": "-", "-": "+", "*": "/", "/": "*"}
        right = [(flip[o], n, p) for o, n, p in right]
    right[0] = ("+" if op in "+-" else "*", right[0][1], right[0][2])
    return Bin(op, _balance(items[:mid]), _balance(right))


def depth(node: Node) -> int:
    """Levels of a tree (a leaf is 1), without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(n, Neg):
            stack.append((n.operand, d + 1))
        elif isinstance(n, Bin):
            stack.extend(((n.left, d + 1), (n.right, d + 1)))
    return deepest


def parse(text: str) -> Node:
    """Parse a loss expression into a tree of :class:`Num`, :class:`Name`, :class:`Neg` and
    :class:`Bin` nodes.

    >>> tree = parse("0.5*dice + bce")
    >>> tree.op, tree.right
    ('+', Name(id='bce', pos=11))
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long; at most {MAX_LENGTH}")
    if not text.isascii():
        bad = next(i for i, ch in enumerate(text) if not ch.isascii())
        raise ExpressionError(_unexpected(text[bad]), text, bad)
    tree = _Parser(text).parse()
    if isinstance(tree, Num):
        raise ExpressionError(
            "expression names no loss; it is the constant "
            f"{tree.value!r} (a loss expression combines registered losses)"
        )
    if depth(tree) > MAX_TREE_DEPTH:
        raise ExpressionError(
            f"expression is {depth(tree)} levels deep; at most {MAX_TREE_DEPTH} "
            "(split it into named composites)"
        )
    return tree


def names(node: Node) -> list[str]:
    """Names in order of first appearance, each once."""
    out: dict[str, None] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Name):
            out.setdefault(n.id)
        elif isinstance(n, Neg):
            stack.append(n.operand)
        elif isinstance(n, Bin):
            stack.extend((n.right, n.left))
    return list(out)


def unparse(node: Node) -> str:
    """Print a tree with the fewest parentheses that re-parse to the same tree."""
    if isinstance(node, Num):
        return repr(node.value)
    if isinstance(node, Name):
        return node.id
    if isinstance(node, Neg):
        inner = unparse(node.operand)
        return f"-{inner}" if isinstance(node.operand, (Num, Name, Neg)) else f"-({inner})"
    prec = _PREC[node.op]
    left = unparse(node.left)
    if isinstance(node.left, Bin) and _PREC[node.left.op] < prec:
        left = f"({left})"
    right = unparse(node.right)
    if isinstance(node.right, Bin) and _PREC[node.right.op] <= prec:
        right = f"({right})"
    sep = " " if prec == 1 else ""
    return f"{left}{sep}{node.op}{sep}{right}"
