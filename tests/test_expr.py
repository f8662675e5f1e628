"""The expression parser: grammar, refusals with carets, caps, and properties."""

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossreg._expr import MAX_DEPTH, MAX_NAMES, Bin, Name, Neg, Num, names, parse, unparse
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


@settings(max_examples=300, deadline=None)
@given(_tree)
def test_printed_trees_reparse_to_the_same_tree(tree):
    assert parse(unparse(tree)) == tree
