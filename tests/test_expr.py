"""The expression parser: grammar, refusals with carets, caps, and properties."""

import contextlib
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossreg._expr import (
    MAX_DEPTH,
    MAX_NAMES,
    MAX_TREE_DEPTH,
    Bin,
    Name,
    Neg,
    Num,
    depth,
    names,
    parse,
    unparse,
)
from lossreg.errors import ExpressionError


def test_precedence_and_associativity():
    assert parse("0.5*dice + bce") == Bin("+", Bin("*", Num(0.5), Name("dice")), Name("bce"))
    assert parse("a - b - c") == Bin("-", Bin("-", Name("a"), Name("b")), Name("c"))
    assert parse("a / b * c") == Bin("*", Bin("/", Name("a"), Name("b")), Name("c"))
    assert parse("-a*b") == Bin("*", Neg(Name("a")), Name("b"))
    assert parse("(a + b) * 2") == Bin("*", Bin("+", Name("a"), Name("b")), Num(2.0))


@pytest.mark.parametrize(
    "text,value",
    [("1e-5*a", 1e-5), ("2.5E3*a", 2500.0), (".5*a", 0.5), ("3.*a", 3.0), ("1e+2*a", 100.0)],
)
def test_numbers_in_scientific_notation(text, value):
    assert parse(text).left == Num(value)


@pytest.mark.parametrize(
    "text,message,column",
    [
        ("dice(x)", "a call", 5),
        ("a.b", "attribute access", 2),
        ("a**2", "power", 3),
        ("a[0]", "subscripts", 2),
        ("a@b", "only \\+ - \\* / are allowed", 2),
        ("'x' + a", "strings", 1),
        ("a < b", "comparisons", 3),
        ("a if b else c", "unexpected 'if'", 3),  # a name followed by a name
        ("ｃ + a", "non-ASCII character 'ｃ'", 1),
        ("a + ⅾice", "non-ASCII", 5),
        ("", "empty expression", 1),
        ("a +", "ends early", 4),
        ("(a + b", r"missing '\)'", 1),
        ("a)", r"unexpected '\)'", 2),
        ("a/0", "division by zero", 2),
        ("a/0.0e3", "division by zero", 2),
        ("1e999*a", "not finite", 1),
        ("a, b", "calls are not allowed", 2),
        ("lambda: a", "unexpected character ':'", 7),
    ],
)
def test_refusals_point_at_the_column(text, message, column):
    with pytest.raises(ExpressionError, match=message) as info:
        parse(text)
    assert info.value.pos == column - 1
    if text:
        assert f"column {column}" in str(info.value)
        caret_line = str(info.value).splitlines()[-1]
        assert caret_line.index("^") - 2 == column - 1  # two spaces of indent


@pytest.mark.parametrize(
    "text,reason,pos",
    [
        ("(" * 200_000 + "a" + ")" * 200_000, "400001 characters long", None),
        ("+".join(["a"] * 100_000), "199999 characters long", None),
        ("-" * 500_000 + "a", "500001 characters long", None),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "nests deeper", MAX_DEPTH),
        ("-" * (MAX_DEPTH + 1) + "a", "nests deeper", MAX_DEPTH),
        ("+".join(["a"] * (MAX_NAMES + 1)), f"more than {MAX_NAMES} names", 2 * MAX_NAMES),
    ],
    ids=["parens-200k", "terms-100k", "minus-500k", "depth-cap", "minus-cap", "names-cap"],
)
def test_pathological_expressions_stop_at_a_cap(text, reason, pos):
    # fast by construction, not by a clock: a long text is refused before it is tokenised
    # (pos None), and the depth and name caps stop the parser at the token that crosses them
    # (pos), so nothing past a cap is parsed and recursion stays within MAX_DEPTH
    with pytest.raises(ExpressionError, match=reason) as info:
        parse(text)
    assert info.value.pos == pos


def test_caps_leave_room_for_real_objectives():
    parse("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    parse("+".join(["a"] * MAX_NAMES))


def test_names_in_order_once():
    assert names(parse("b + 0.5*a + b*a - c")) == ["b", "a", "c"]


def test_non_string_is_an_expression_error():
    with pytest.raises(ExpressionError, match="must be a string, got int"):
        parse(3)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_random_text_only_ever_raises_expression_error(text):
    with contextlib.suppress(ExpressionError):
        parse(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab01.e+-*/() ", max_size=30))
def test_random_grammar_soup_only_ever_raises_expression_error(text):
    with contextlib.suppress(ExpressionError):
        parse(text)


_leaf = st.one_of(
    st.sampled_from(["dice", "bce", "focal", "a_1"]).map(Name),
    st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False).map(Num),
)
_tree = st.recursive(
    _leaf,
    lambda sub: st.one_of(
        sub.map(Neg),
        st.tuples(st.sampled_from("+-*/"), sub, sub).map(lambda t: Bin(*t)),
    ),
    max_leaves=12,
)


_ENV = {"dice": Fraction(3, 10), "bce": Fraction(17, 10), "focal": Fraction(29, 10), "a_1": 2}


def _value(node, magnitude=False, env=_ENV):
    """Exact value of a tree (``magnitude``: of the tree with every sign made +, a scale for
    the rounding that folding constants in floating point may add)."""
    if isinstance(node, Num):
        return abs(Fraction(node.value)) if magnitude else Fraction(node.value)
    if isinstance(node, Name):
        return env[node.id]
    if isinstance(node, Neg):
        return _value(node.operand, magnitude, env) * (1 if magnitude else -1)
    a, b = _value(node.left, magnitude, env), _value(node.right, magnitude, env)
    if node.op == "*":
        return a * b
    if node.op == "/":
        return a / b
    return a + b if node.op == "+" or magnitude else a - b


@settings(max_examples=100, deadline=None)
@given(_tree.filter(lambda t: "/" not in unparse(t)))
def test_printed_trees_reparse_to_the_same_value(tree):
    # the parser folds constants and balances long chains, so the tree may change; its value
    # may not (exact arithmetic on both sides, up to the rounding of folding in floats)
    try:
        parsed = parse(unparse(tree))
    except ExpressionError as exc:
        assert not names(tree) or "levels deep" in str(exc)
        return
    assert abs(_value(parsed) - _value(tree)) <= Fraction(1, 10**9) * (1 + _value(tree, True))


def test_printed_trees_of_names_reparse_to_the_same_tree():
    tree = Bin("-", Bin("*", Neg(Name("a")), Name("b")), Bin("-", Name("c"), Name("d")))
    assert parse(unparse(tree)) == tree


# -- folding, refusing constant-only expressions, bounded depth (round 2) ----------------------
@pytest.mark.parametrize(
    "text,message",
    [
        ("l1/-0", "division by zero"),
        ("l1/(1-1)", "division by zero"),
        ("l1/(0*3)", "division by zero"),
        ("1e308*1e308*l1", "not finite"),
        ("l1*1e308*1e308", "not finite"),
        ("l1 + 1e308 + 1e308", "not finite"),
        ("l1/1e-308/1e-308", "not finite"),
        ("0.5 + 2", "names no loss"),
        ("-(3)", "names no loss"),
        ("+".join(["0"] * 1000), "names no loss"),
    ],
)
def test_constants_are_folded_and_checked(text, message):
    with pytest.raises(ExpressionError, match=message):
        parse(text)


def test_constants_fold_into_one_leading_constant():
    assert parse("l1*2/4") == Bin("*", Num(0.5), Name("l1"))
    assert parse("1 + l1 - 3") == Bin("+", Num(-2.0), Name("l1"))
    assert parse("--a") == Name("a")
    assert parse("0.5*dice") == Bin("*", Num(0.5), Name("dice"))  # one constant: as written


@pytest.mark.parametrize(
    "text",
    [
        "+".join(["0"] * 1000) + "+l1",
        "l1+" + "+".join(["0"] * 1000),
        "+".join(["l1"] * MAX_NAMES),
        "-".join(["l1", "mse"] * (MAX_NAMES // 2)),
        "/".join(["l1"] * 100),
        "-" * MAX_DEPTH + "l1",
    ],
    ids=["zeros-then-name", "name-then-zeros", "names", "alternating-minus", "divisions", "minus"],
)
def test_long_chains_make_shallow_trees(text):
    assert depth(parse(text)) <= 16  # log2(terms) levels plus the short chains at the leaves


def test_long_chains_keep_their_value():
    import random

    rng = random.Random(0)
    values = {f"x{i}": rng.uniform(1, 2) for i in range(40)}
    ops = [rng.choice("+-") for _ in range(39)]
    text = "x0" + "".join(f" {op} x{i + 1}" for i, op in enumerate(ops))
    exact = values["x0"] + sum(
        (1 if op == "+" else -1) * values[f"x{i + 1}"] for i, op in enumerate(ops)
    )
    assert _value(parse(text), env=values) == pytest.approx(exact, rel=1e-12)
    text = "x0" + "".join(f" {rng.choice('*/')} x{i + 1}" for i in range(20))
    assert _value(parse(text), env=values) == pytest.approx(
        _value(_left(text), env=values), rel=1e-12
    )


def _left(text):
    """The left-associative tree of a flat ``* /`` chain, as written."""
    import re

    parts = re.split(r"\s*([*/])\s*", text)
    node = Name(parts[0])
    for op, name in zip(parts[1::2], parts[2::2], strict=True):
        node = Bin(op, node, Name(name))
    return node


def test_depth_is_capped_where_parentheses_alone_are_not():
    text = "l1"
    for _ in range(MAX_TREE_DEPTH // 2):  # each level adds two: (x)*2 + 1
        text = f"({text})*2+1"
    with pytest.raises(ExpressionError, match=f"levels deep; at most {MAX_TREE_DEPTH}"):
        parse(text)


@pytest.mark.slow
def test_whatever_parses_forwards_pickles_copies_and_compiles():
    import copy
    import io
    import pickle

    import torch

    import lossreg

    text = "l1"
    for _ in range(MAX_TREE_DEPTH // 2 - 1):
        text = f"({text})*2+1"
    assert depth(parse(text)) == MAX_TREE_DEPTH - 1
    x, y = torch.randn(3), torch.randn(3)
    for expr in (text, "+".join(["0"] * 1000) + "+l1", "+".join(["l1"] * MAX_NAMES)):
        module = lossreg.build(expr)
        want = module(x, y)
        for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
            assert torch.equal(clone(x, y), want)
        buffer = io.BytesIO()
        torch.save(module, buffer)
    torch._dynamo.reset()
    compiled = torch.compile(lossreg.build(text), backend="eager")  # tracing is what recurses
    assert torch.allclose(compiled(x, y), lossreg.build(text)(x, y))
