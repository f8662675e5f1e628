"""The overlap losses' options, defined once: the params models (the rules) and the keyword
``TypedDict`` of each functional (the same names; ``tests/test_manifest`` checks). Re-exported
by :mod:`lossreg_builtin.segmentation`, which documents the policy they configure."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from pydantic import Field, field_validator

from lossreg import Params, Reduction

__all__ = [
    "ClassWeightsParams",
    "ComboOptions",
    "ComboParams",
    "DiceOptions",
    "DiceParams",
    "FocalTverskyOptions",
    "FocalTverskyParams",
    "IoUOptions",
    "IoUParams",
    "OverlapOptions",
    "OverlapParams",
    "TverskyOptions",
    "TverskyParams",
]

Mode = Literal["binary", "multiclass", "multilabel"]


class OverlapParams(Params):
    mode: Mode = Field(
        "binary",
        description="`binary`: (N, 1, *) or (N, *) logits and a same-shape mask in [0, 1]; "
        "`multiclass`: (N, C, *) logits (softmax over C), target (N, *) class indices or "
        "(N, C, *) probabilities; `multilabel`: (N, C, *) logits (sigmoid per channel), "
        "target (N, C, *) in [0, 1]",
    )
    from_logits: bool = Field(
        True, description="input holds logits; false: probabilities in [0, 1] (checked)"
    )
    smooth: float = Field(
        1.0,
        ge=0,
        description="added to numerator and denominator; keeps empty masks finite and gives an "
        "empty target with false positives a gradient that pushes them down",
    )
    eps: float = Field(1e-7, ge=0, description="added to denominators only")
    ignore_index: int | None = Field(
        None, description="target value whose pixels contribute to no statistic"
    )
    classes: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)] | None = Field(
        None, description="class indices to average over (default: all)"
    )
    per_image: bool = Field(
        False, description="statistics per sample instead of over the whole batch"
    )
    reduction: Reduction = Field(
        "mean",
        description="`mean` over classes (and samples with per_image), `sum`, or `none`: "
        "(C,), or (N, C) with per_image",
    )
    dist_sync: bool = Field(
        False,
        description="all-reduce the statistics across the initialised process group "
        "(differentiable), so every rank computes the global batch's loss",
    )


class ClassWeightsParams(Params):
    class_weights: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)] | None = (
        Field(
            None,
            description="one weight per class of the input (>= 0, not all 0): the loss is the "
            "weighted mean sum_c w_c L_c / sum_c w_c over the classes averaged",
        )
    )

    @field_validator("class_weights")
    @classmethod
    def _some_weight(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and not sum(v) > 0:
            raise ValueError("class_weights must not all be 0")
        return v


class IoUParams(OverlapParams, ClassWeightsParams):
    pass


class DiceParams(OverlapParams, ClassWeightsParams):
    log_loss: bool = Field(False, description="-log(dice coefficient) instead of 1 - dice")
    squared: bool = Field(
        False,
        description="Milletari et al. (V-Net) denominator sum p^2 + sum t^2 (MONAI's "
        "squared_pred); false: the linear sum p + sum t",
    )


class TverskyParams(OverlapParams, ClassWeightsParams):
    alpha: float = Field(
        0.3, ge=0, description="weight of false positives (0.3 as in Salehi et al. 2017)"
    )
    beta: float = Field(
        0.7, ge=0, description="weight of false negatives (0.7 as in Salehi et al. 2017)"
    )


class FocalTverskyParams(TverskyParams):
    gamma: float = Field(
        0.75,
        gt=0,
        description="focal exponent on 1 - TI; 0.75 is Abraham and Khan's 1/gamma with "
        "their gamma 4/3",
    )


class ComboParams(OverlapParams):
    mode: Literal["binary", "multilabel"] = Field(
        "binary", description="`binary` or `multilabel` (the weighted BCE is per channel)"
    )
    alpha: float = Field(
        0.5,
        ge=0,
        le=1,
        description="weight of positives in the weighted BCE (1 - alpha: negatives)",
    )
    ce_ratio: float = Field(
        0.5, ge=0, le=1, description="weight of the weighted BCE; 1 - ce_ratio weighs the dice term"
    )


# -- the options as keywords: the same names as the params models (tests/test_manifest checks)
class OverlapOptions(TypedDict, total=False):
    """Keyword options of every overlap functional; defaults and rules: :class:`OverlapParams`."""

    mode: str
    from_logits: bool
    smooth: float
    eps: float
    ignore_index: int | None
    classes: list[int] | None
    per_image: bool
    reduction: str
    dist_sync: bool


class IoUOptions(OverlapOptions, total=False):
    class_weights: list[float] | None


class DiceOptions(IoUOptions, total=False):
    log_loss: bool
    squared: bool


class TverskyOptions(IoUOptions, total=False):
    alpha: float
    beta: float


class FocalTverskyOptions(TverskyOptions, total=False):
    gamma: float


class ComboOptions(OverlapOptions, total=False):
    alpha: float
    ce_ratio: float
