"""A composite's expression as a flat postfix program, evaluated with a stack.

The parse tree of ``a + b + c + ...`` is as deep as the chain is long; walking it recursively
(or pickling, deep-copying or tracing a module that holds it) would hit Python's recursion limit
on long chains. The program is a tuple of ``(op, arg)`` pairs built by an explicit-stack walk,
so nothing downstream recurses.

>>> from lossreg._expr import parse
>>> program = compile_program(parse("0.5*a + b"))
>>> program
(('num', 0.5), ('name', 'a'), ('*', None), ('name', 'b'), ('+', None))
>>> run_program(program, {"a": 4.0, "b": 1.0})
3.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._expr import Bin, Name, Neg, Node, Num

__all__ = ["Program", "compile_program", "run_program"]

Program = tuple[tuple[str, Any], ...]


def compile_program(tree: Node) -> Program:
    """Post-order walk of ``tree`` with an explicit stack."""
    out: list[tuple[str, Any]] = []
    stack: list[tuple[Node, bool]] = [(tree, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, Num):
            out.append(("num", node.value))
        elif isinstance(node, Name):
            out.append(("name", node.id))
        elif children_done:
            out.append(("neg", None) if isinstance(node, Neg) else (node.op, None))
        elif isinstance(node, Neg):
            stack += [(node, True), (node.operand, False)]
        else:
            assert isinstance(node, Bin)
            stack += [(node, True), (node.right, False), (node.left, False)]
    return tuple(out)


def run_program(program: Program, values: Mapping[str, Any]) -> Any:
    """Evaluate ``program`` with each name looked up in ``values``."""
    stack: list[Any] = []
    for op, arg in program:
        if op == "num":
            stack.append(arg)
        elif op == "name":
            stack.append(values[arg])
        elif op == "neg":
            stack.append(-stack.pop())
        else:
            b = stack.pop()
            a = stack.pop()
            if op == "+":
                stack.append(a + b)
            elif op == "-":
                stack.append(a - b)
            elif op == "*":
                stack.append(a * b)
            else:
                stack.append(a / b)
    return stack[0]
