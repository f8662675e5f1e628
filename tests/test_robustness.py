"""Catalog-wide robustness (ROBUSTNESS.md, Round 2, Tensors): every built-in loss, in every
mode, driven by its declared input kinds, on NaN inputs, empty batches, out-of-range targets,
wrong dtypes, wrong call signatures and autocast. Each case ends in the documented value or a
``LossregError`` naming the loss; never a foreign exception, a finite value for NaN input or
uninitialised memory.

The losses are read from the registry, so a new built-in is covered on registration; one
whose inputs are undeclared, or whose declared kinds no layout below fits, fails with a
message saying so. Hypothesis draws the batch size, the seed and the poisoned element
(derandomised under ``CI``).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import lossreg
from lossreg import LossregError
from lossreg._checks import FLOAT_KINDS
from lossreg._expr import names, parse
from lossreg._registry import registry

C = 3  # classes / channels
# few examples, no shrinking: a failure names the loss and the case already
EXAMPLES = settings(max_examples=4, deadline=None, phases=(Phase.explicit, Phase.generate))


# -- the catalog and its declared inputs ---------------------------------------------------
def _builtins() -> list[str]:
    return sorted(n for n in lossreg.available() if lossreg.describe(n).distribution == "lossreg")


def _kinds(name: str) -> dict[str, str] | None:
    info = lossreg.describe(name)
    if info.input_kinds is not None:
        return dict(info.input_kinds)
    rec = registry.lookup(name)
    if rec.kind != "composite":
        return None
    # a composite called positionally gives every term the same tensors: the strictest
    # declared kind of each argument (a binary target is also a mode target)
    terms = rec.spec.get("terms") or {}
    merged: dict[str, str] = {}
    for key in names(parse(rec.spec["expr"])):
        kinds = _kinds((terms.get(key) or {}).get("name", key))
        if kinds is None:
            return None
        for arg, kind in kinds.items():
            if merged.get(arg) in (None, "mode_target"):
                merged[arg] = kind
    return merged


def _effective(name: str, kinds: dict[str, str]) -> dict[str, str]:
    """``from_logits: false`` (e.g. the ``BCELoss`` preset) makes the logits probabilities."""
    fld = lossreg.describe(name).params.model_fields.get("from_logits")
    if fld is not None and fld.default is False:
        return {a: "probabilities" if k == "logits" else k for a, k in kinds.items()}
    return kinds


def _names_of(name: str) -> set[str]:
    """The loss and, for a composite, its terms' losses: an error may name any of them."""
    rec = registry.lookup(name)
    found = {name, *lossreg.describe(name).aliases}
    if rec.kind == "composite":
        terms = rec.spec.get("terms") or {}
        for key in names(parse(rec.spec["expr"])):
            found |= _names_of((terms.get(key) or {}).get("name", key))
    elif rec.kind == "preset":
        found |= _names_of(rec.spec["name"])
    return found


def _modes(name: str) -> list[str | None]:
    fld = lossreg.describe(name).params.model_fields.get("mode")
    if fld is None:
        return [None]
    return [a for a in typing.get_args(fld.annotation) if isinstance(a, str)] or [fld.default]


def _reductions(name: str) -> list[str]:
    fld = lossreg.describe(name).params.model_fields.get("reduction")
    return [] if fld is None else [a for a in typing.get_args(fld.annotation)]


CASES = [(n, m) for n in _builtins() for m in _modes(n)]
IDS = [f"{n}-{m}" if m else n for n, m in CASES]


# -- valid inputs from the kinds -----------------------------------------------------------
@dataclass
class Layout:
    """Shapes for one way a loss may lay out its tensors."""

    name: str
    dense: tuple[int, ...]  # model outputs (and same-shape targets)
    indices: tuple[int, ...]  # class-index targets
    sign: tuple[int, ...] | None = None  # sign targets, if not the dense shape


def _layouts(n: int, mode: str | None) -> list[Layout]:
    c = 1 if mode == "binary" else C
    hw = 12  # windowed losses (ssim) need 11 pixels a side
    return [
        Layout("dense", (n, c, hw, hw), (n, hw, hw)),
        Layout("dense-1", (n, 1, hw, hw), (n, hw, hw)),  # composites of binary-default terms
        Layout("rows", (n, C), (n,), (n,)),
        Layout("rows-same", (n, C), (n, C)),
        Layout("vector", (n,), (n,)),
        Layout("bins", (n, C), (n,)),  # (*, n_bins) scores, a real target in [0, n_bins - 1]
    ]


def _tensor(kind: str, shape, layout: Layout, gen: torch.Generator, mode: str | None, first=True):
    def rand(*s):
        return torch.rand(*s, generator=gen)

    def randn(*s):
        return torch.randn(*s, generator=gen)

    if kind == "real" and not first and layout.name == "bins":
        return rand(layout.indices) * (shape[-1] - 1)
    if kind in ("logits", "real", "distance_map"):
        return randn(shape)
    if kind == "probabilities":
        return randn(shape).softmax(1 if len(shape) > 1 else 0)
    if kind == "log_probabilities":
        return randn(shape).log_softmax(1 if len(shape) > 1 else 0)
    if kind == "nonnegative":
        return rand(shape) * 3
    if kind == "variance":
        return rand(shape) + 0.1
    if kind == "sign":
        s = layout.sign or shape
        return torch.randint(0, 2, s, generator=gen).float() * 2 - 1
    if kind == "boxes":
        xy = rand(shape[0], 2) * 10
        return torch.cat([xy, xy + rand(shape[0], 2) * 5 + 1], dim=1)
    if kind == "class_indices" or (kind == "mode_target" and mode == "multiclass"):
        return torch.randint(0, C, layout.indices, generator=gen)
    if kind in ("binary_target", "mode_target"):
        return (rand(shape) < 0.4).float()
    raise AssertionError(f"no generator for input kind {kind!r}: add one to {__name__}")


def _make(name: str, kinds: dict[str, str], layout: Layout, mode, seed: int):
    gen = torch.Generator().manual_seed(seed)
    if "lengths" in kinds.values():  # sequences (ctc): (T, N, C) and (N, S) labels
        n, t, s = layout.dense[0], 6, 2
        out = []
        for arg, kind in kinds.items():
            if kind == "log_probabilities":
                out.append(torch.randn(t, n, C, generator=gen).log_softmax(2))
            elif kind == "class_indices":
                out.append(torch.randint(1, C, (n, s), generator=gen))
            else:
                out.append(torch.full((n,), t if arg.startswith("input") else s))
        return tuple(out)
    shape = (layout.dense[0], 4) if "boxes" in kinds.values() else layout.dense
    return tuple(_tensor(k, shape, layout, gen, mode, i == 0) for i, k in enumerate(kinds.values()))


def _build(name: str, mode, **params):
    if mode is not None:
        params["mode"] = mode
    return lossreg.build(name, **params)


_FOUND: dict[tuple[str, object], str] = {}


def _valid(name: str, mode, n: int = 2, seed: int = 0):
    """Inputs the loss accepts, from its declared kinds; the layout found is remembered."""
    kinds = _kinds(name)
    assert kinds is not None, (
        f"{name}: no declared inputs; register it with inputs={{...}} (lossreg/_inputs.py)"
    )
    kinds = _effective(name, kinds)
    layouts = _layouts(max(n, 1), mode)
    if (name, mode) in _FOUND:
        layouts = [lay for lay in layouts if lay.name == _FOUND[name, mode]]
    errors = []
    for layout in layouts:
        xs = _make(name, kinds, layout, mode, seed)
        try:
            out = _build(name, mode)(*xs)
        except LossregError as exc:
            errors.append(f"{layout.name}: {exc}")
            continue
        assert torch.isfinite(out).all(), f"{name}: non-finite value on valid inputs"
        _FOUND[name, mode] = layout.name
        if n == 0:
            return kinds, _make(name, kinds, _shrink(layout), mode, seed)
        return kinds, xs
    raise AssertionError(f"{name} (mode {mode}): no layout fits its declared kinds: {errors}")


def _shrink(layout: Layout) -> Layout:
    def z(s):
        return None if s is None else (0, *s[1:])

    return Layout(layout.name, z(layout.dense), z(layout.indices), z(layout.sign))


def _refused(name: str, call, *say: str) -> None:
    """``call`` raises a LossregError naming the loss (and each of ``say``)."""
    try:
        call()
    except LossregError as exc:
        msg = str(exc)
        assert any(n in msg for n in _names_of(name)), f"{name}: error names no loss: {msg}"
        for word in say:
            assert word in msg, f"{name}: {word!r} not in {msg!r}"
        return
    raise AssertionError(f"{name}: accepted what it must refuse ({say})")


def _floating(xs):
    return [i for i, x in enumerate(xs) if x.is_floating_point()]


# -- known defects (strict xfail: a fix flips them); none left
KNOWN_NAN: dict[str, str] = {}


def _marked(known: dict[str, str]) -> list:
    return [
        pytest.param(n, m, id=i, marks=pytest.mark.xfail(reason=known[n], strict=True))
        if n in known
        else pytest.param(n, m, id=i)
        for (n, m), i in zip(CASES, IDS, strict=True)
    ]


# -- the properties ------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "mode"), _marked(KNOWN_NAN))
@EXAMPLES
@given(seed=st.integers(0, 2**16), pick=st.integers(0, 2**16))
def test_nan_input_is_never_finite(name, mode, seed, pick):
    kinds, xs = _valid(name, mode, seed=seed)
    for i in _floating(xs):
        poisoned = list(xs)
        t = xs[i].clone()
        t.view(-1)[pick % t.numel()] = float("nan")
        poisoned[i] = t
        for reduction in _reductions(name) or [None]:
            extra = {} if reduction is None else {"reduction": reduction}
            try:
                out = _build(name, mode, **extra)(*poisoned)
            except LossregError as exc:
                assert any(n in str(exc) for n in _names_of(name)), str(exc)
                continue
            arg = list(kinds)[i]
            assert not torch.isfinite(out).all(), (
                f"{name} (mode {mode}, reduction {reduction}): NaN in {arg} gave {out}"
            )


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_empty_batch_is_zero_with_zero_gradient(name, mode):
    kinds, xs = _valid(name, mode, n=0)
    grads = [i for i in _floating(xs) if list(kinds.values())[i] != "sign"]
    for reduction in _reductions(name) or [None]:
        extra = {} if reduction is None else {"reduction": reduction}
        ins = [x.clone().requires_grad_(i in grads) for i, x in enumerate(xs)]
        for _ in range(2):  # twice: uninitialised memory differs between calls
            out = _build(name, mode, **extra)(*ins)
            if reduction == "none":  # per sample: empty; per class (overlap losses): zeros
                assert not out.any(), f"{name}: none on an empty batch gave {out}"
                continue
            assert out.shape == () and out.item() == 0.0, f"{name} ({reduction}): {out}"
            if out.requires_grad:
                out.backward()
                for i in grads:
                    assert ins[i].grad is not None and not ins[i].grad.any()


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
@EXAMPLES
@given(bad=st.sampled_from([255.0, 2.0, -1.0, 1.5, -0.25]), dtype=st.sampled_from(["f", "u8"]))
def test_targets_outside_unit_interval_are_refused(name, mode, bad, dtype):
    kinds, xs = _valid(name, mode)
    ranged = [
        i
        for i, k in enumerate(kinds.values())
        if k == "binary_target" or (k == "mode_target" and mode in ("binary", "multilabel"))
    ]
    for i in ranged:
        t = xs[i].clone()
        t.view(-1)[0] = bad
        if dtype == "u8":
            if bad != int(bad) or bad < 0:
                continue
            t = t.to(torch.uint8)
        f = _build(name, mode)
        _refused(name, lambda f=f, t=t, i=i: f(*xs[:i], t, *xs[i + 1 :]), "[0, 1]")


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_class_indices_out_of_range_are_refused(name, mode):
    kinds, xs = _valid(name, mode)
    for i, k in enumerate(kinds.values()):
        if k == "class_indices" or (k == "mode_target" and mode == "multiclass"):
            t = xs[i].clone()
            t.view(-1)[0] = 1000
            f = _build(name, mode)
            _refused(name, lambda f=f, t=t, i=i: f(*xs[:i], t, *xs[i + 1 :]))


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_wrong_dtypes_are_refused(name, mode):
    kinds, xs = _valid(name, mode)
    for i, k in enumerate(kinds.values()):
        swap = []
        if xs[i].is_floating_point():
            swap.append(xs[i].to(torch.complex64))
        if k in FLOAT_KINDS:
            swap += [xs[i].to(torch.int64), xs[i] > 0]
        for t in swap:
            f = _build(name, mode)
            _refused(name, lambda f=f, t=t, i=i: f(*xs[:i], t, *xs[i + 1 :]), str(t.dtype))


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
def test_wrong_call_signatures_name_the_inputs(name, mode):
    kinds, xs = _valid(name, mode)
    f = _build(name, mode)
    first = next(iter(kinds))
    _refused(name, lambda: f(*xs[:-1]), "missing", list(kinds)[-1])
    _refused(name, lambda: f(*xs, xs[0]), "positional", first)
    _refused(name, lambda: f(*xs, not_an_input=xs[0]), "not_an_input", first)
    _refused(name, lambda: f(xs[0].tolist(), *xs[1:]), "torch.Tensor", first)
    _refused(name, lambda: f(*xs[:-1], xs[-1].numpy()), "torch.Tensor", list(kinds)[-1])


@pytest.mark.parametrize(("name", "mode"), CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gives_float32(name, mode, dtype):
    kinds, xs = _valid(name, mode)
    low = [x.to(dtype) if k in FLOAT_KINDS else x for x, k in zip(xs, kinds.values(), strict=True)]
    with torch.autocast("cpu", dtype=dtype):
        out = _build(name, mode)(*low)
    assert out.dtype == torch.float32, f"{name}: {out.dtype} under {dtype} autocast"
    assert torch.isfinite(out).all()


def test_every_builtin_declares_its_inputs():
    undeclared = [n for n in _builtins() if _kinds(n) is None]
    assert not undeclared, f"built-in losses without declared inputs: {undeclared}"
