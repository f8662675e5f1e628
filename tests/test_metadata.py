"""Metadata as data: ``describe`` tells renderers everything (spec, resolved summary and doc,
input kinds), and ``eval``/``plot`` make inputs from the declared kinds, never by guessing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg._synthetic import effective_kind, make_inputs, make_tensor
from lossreg.cli.plot import curve
from lossreg.cli.synthetic import synth_call


def _kl(input, target, *, reduction: str = "batchmean"):  # type: ignore[no-untyped-def]
    return F.kl_div(input, target, reduction=reduction)


def _needs_indices(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
    if target.is_floating_point():
        raise lossreg.LossregError("meta_indices: target must be class indices")
    return F.cross_entropy(input, target, reduction=reduction)


def _buggy(input, target, *, reduction: str = "mean"):  # type: ignore[no-untyped-def]
    return input.sum() + torch.zeros(2, 2) @ torch.zeros(3, 3)  # a real bug: a shape error


@pytest.fixture(scope="module", autouse=True)
def _losses() -> None:
    kinds = {"input": "log_probabilities", "target": "probabilities"}
    lossreg.register("meta_kl", _kl, override=True, inputs=kinds)
    lossreg.register("meta_kl_preset", {"name": "meta_kl", "reduction": "sum"}, override=True)
    lossreg.register("meta_indices", _needs_indices, override=True)  # declares nothing
    lossreg.register(
        "meta_buggy", _buggy, override=True, inputs={"input": "real", "target": "real"}
    )


def test_describe_resolves_a_preset_through_its_base() -> None:
    preset, base = lossreg.describe("meta_kl_preset"), lossreg.describe("meta_kl")
    assert preset.kind == "preset" and preset.spec == {"name": "meta_kl", "reduction": "sum"}
    assert (
        preset.input_kinds
        == base.input_kinds
        == {
            "input": "log_probabilities",
            "target": "probabilities",
        }
    )
    assert preset.factory is _kl and preset.inputs == ("input", "target")
    assert base.spec is None
    bce_loss, bce = lossreg.describe("BCELoss"), lossreg.describe("bce")
    assert (bce_loss.summary, bce_loss.doc) == (bce.summary, bce.doc) != ("", "")


def test_describe_gives_a_composite_its_spec() -> None:
    info = lossreg.describe("dice_bce")
    assert info.kind == "composite" and info.spec == {"expr": "dice + bce"}
    assert info.factory is None and info.differentiable


def test_describe_spec_is_a_copy() -> None:
    lossreg.describe("BCELoss").spec["from_logits"] = True  # type: ignore[index]
    assert lossreg.describe("BCELoss").spec == {"name": "bce", "from_logits": False}


@pytest.mark.parametrize(
    ("kind", "config", "want"),
    [
        ("mode_target", {"mode": "multiclass"}, "class_indices"),
        ("mode_target", {"mode": "binary"}, "binary_target"),
        ("mode_target", {}, "binary_target"),
        ("logits", {"from_logits": False}, "probabilities"),
        ("probabilities", {"log_target": True}, "log_probabilities"),
        ("real", {"mode": "multiclass"}, "real"),
    ],
)
def test_effective_kind_follows_the_config(kind: str, config: dict, want: str) -> None:
    assert effective_kind(kind, config) == want


def test_tensors_hold_what_their_kind_says() -> None:
    gen = torch.Generator().manual_seed(0)
    p = make_tensor("probabilities", (2, 3, 5), gen)
    torch.testing.assert_close(p.sum(1), torch.ones(2, 5))
    assert (make_tensor("log_probabilities", (2, 3), gen) <= 0).all()
    idx = make_tensor("class_indices", (4, 5), gen, num_classes=3)
    assert idx.dtype == torch.int64 and idx.min() >= 0 and idx.max() < 3
    assert set(make_tensor("sign", (50,), gen).unique().tolist()) == {-1.0, 1.0}
    assert (make_tensor("variance", (9,), gen) > 0).all()
    boxes = make_tensor("boxes", (6, 4), gen)
    assert (boxes[:, 2:] >= boxes[:, :2]).all()
    with pytest.raises(lossreg.LossregError, match="no synthetic tensor for input kind 'pixels'"):
        make_tensor("pixels", (2,), gen)


def test_class_index_targets_drop_the_class_dim_and_follow_a_weight() -> None:
    gen = torch.Generator().manual_seed(0)
    kinds = {"input": "logits", "target": "class_indices"}
    made = make_inputs(("input", "target"), kinds, {"weight": [1.0] * 5}, (2, 3, 4), gen)
    assert made["input"].shape == (2, 3, 4) and made["target"].shape == (2, 4)
    assert made["target"].max() < 5


def test_eval_of_a_kl_divergence_is_not_negative() -> None:
    value, tensors, _ = synth_call(lossreg.build("meta_kl"))
    assert float(value) >= 0
    assert (tensors["input"] <= 0).all()  # log-probabilities


def test_eval_of_an_undeclared_loss_names_it_and_suggests_inputs() -> None:
    with pytest.raises(lossreg.LossregError, match="meta_indices declares no input kinds") as e:
        synth_call(lossreg.build("meta_indices"))
    assert "inputs=" in e.value.hint
    assert isinstance(e.value.__cause__, lossreg.LossregError)


def test_eval_shows_a_real_bug_as_itself() -> None:
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        synth_call(lossreg.build("meta_buggy"))


def test_eval_of_a_composite_names_the_term_that_refused() -> None:
    with pytest.raises(lossreg.LossregError, match="term 'meta_indices'"):
        synth_call(lossreg.build("meta_kl + meta_indices"))


def test_plot_reads_the_declared_kinds() -> None:
    p, kl = curve("meta_kl", reduction="sum")  # log-probabilities in, one-hot target: -log p
    torch.testing.assert_close(kl, -torch.log(p), rtol=1e-9, atol=1e-12)
    with pytest.raises(lossreg.LossregError, match="declare what meta_indices takes"):
        curve("meta_indices")


def test_eval_and_plot_of_the_built_in_kl_div() -> None:
    # log-probabilities against a distribution: KL >= 0 (eval once showed a negative KL)
    value, tensors, _ = synth_call(lossreg.build("kl_div"))
    assert float(value) >= 0 and (tensors["input"] <= 0).all()
    p, kl = curve("kl_div", reduction="sum")
    torch.testing.assert_close(kl, -torch.log(p), rtol=1e-9, atol=1e-12)


def test_show_and_the_catalog_print_the_declared_kinds() -> None:
    from lossreg.cli.catalog import render_catalog

    page = render_catalog()
    assert "- **inputs**: `input` (log_probabilities), `target` (probabilities)" in page
    assert "- **preset of**: `name: bce`, `from_logits: False`" in page
    bce_loss = page.split("### `BCELoss`", 1)[1].split("###", 1)[0]
    assert "- **inputs**: `input` (probabilities), `target` (binary_target)" in bce_loss
