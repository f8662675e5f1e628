"""The built-in plugins' registrations: one class per entry point, names and tags only.

Each factory and params model is a :func:`lossreg.lazy` reference into its family module, so
discovery (and ``lossreg.available()``) imports none of them, nor pydantic; a loss's module is
imported on its first lookup. The formulas, schemas and docs live in the family modules; this
file only says what is registered under which names. ``test_manifest`` checks every reference
resolves to what the family module defines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lossreg

__all__ = [
    "boundary",
    "ce_variants",
    "classification",
    "dense_detection",
    "detection",
    "distillation",
    "image",
    "imbalance",
    "lovasz",
    "multilabel",
    "regression",
    "robust",
    "segmentation",
    "skeleton",
    "torch_nn",
]


def _refs(module: str) -> Callable[[str], Any]:
    return lambda attr: lossreg.lazy(f"lossreg_builtin.{module}:{attr}")


class regression:
    """l1, mse, smooth_l1, huber, sobolev (:mod:`lossreg_builtin.regression`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("regression"), ("regression",)
        masked = (*tags, "masked")  # takes the call-time `mask` (OBJECTIVES.md)
        real2 = {"input": "real", "target": "real"}
        common = r("RegressionParams")
        register(
            "l1", r("l1"), params=common, aliases=("mae", "l1_loss", "L1Loss"), tags=masked,
            inputs=real2,
        )  # fmt: skip
        register(
            "mse", r("mse"), params=common, aliases=("l2", "mse_loss", "MSELoss"), tags=masked,
            inputs=real2,
        )  # fmt: skip
        register(
            "smooth_l1", r("smooth_l1"), params=r("SmoothL1Params"), aliases=("SmoothL1Loss",),
            tags=masked, inputs=real2,
        )  # fmt: skip
        register(
            "huber", r("huber"), params=r("HuberParams"), aliases=("HuberLoss",), tags=masked,
            inputs=real2,
        )  # fmt: skip
        register("sobolev", r("sobolev"), params=r("SobolevParams"), tags=tags, inputs=real2)


class classification:
    """cross_entropy, nll, bce, BCELoss, weighted_cross_entropy, focal, zero_one
    (:mod:`lossreg_builtin.classification`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("classification"), ("classification",)
        masked = (*tags, "masked")  # takes the call-time `mask` (OBJECTIVES.md)
        binary = {"input": "logits", "target": "binary_target"}
        by_mode = {"input": "logits", "target": "mode_target"}
        register(
            "cross_entropy", r("cross_entropy"), params=r("CrossEntropyParams"),
            aliases=("ce", "CrossEntropyLoss"), tags=masked,
            inputs={"input": "logits", "target": "class_indices"},
        )  # fmt: skip
        register(
            "nll", r("nll"), params=r("NLLParams"), aliases=("nll_loss", "NLLLoss"), tags=masked,
            inputs={"input": "log_probabilities", "target": "class_indices"},
        )  # fmt: skip
        register(
            "bce", r("bce"), params=r("BCEParams"), tags=masked,
            aliases=("bce_with_logits", "bce_logits", "binary_cross_entropy", "BCEWithLogitsLoss"),
            inputs=binary,
        )  # fmt: skip
        register("BCELoss", {"name": "bce", "from_logits": False}, tags=masked)
        register(
            "weighted_cross_entropy", r("weighted_cross_entropy"), params=r("WeightedCEParams"),
            aliases=("wce",), tags=masked, inputs=binary,
        )  # fmt: skip
        register("focal", r("focal"), params=r("FocalParams"), tags=masked, inputs=by_mode)
        # no "0-1" alias: names are identifiers, so "bce + 0-1" can never read as "bce - 1"
        register(
            "zero_one", r("zero_one"), params=r("ZeroOneParams"), tags=tags,
            differentiable=False, inputs=by_mode,
        )  # fmt: skip


class torch_nn:
    """The rest of the ``torch.nn`` loss family (:mod:`lossreg_builtin.torch_nn`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r = _refs("torch_nn")
        cls, reg, metric = ("classification",), ("regression",), ("metric_learning",)
        sign2 = {"input": "real", "target": "sign"}
        pair = {"input1": "real", "input2": "real", "target": "sign"}
        triplet = {"anchor": "real", "positive": "real", "negative": "real"}
        for name, params, alias, tags, inputs in [
            ("kl_div", "KLDivParams", "KLDivLoss", cls,
             {"input": "log_probabilities", "target": "probabilities"}),
            ("poisson_nll", "PoissonNLLParams", "PoissonNLLLoss", reg,
             {"input": "real", "target": "nonnegative"}),
            ("gaussian_nll", "GaussianNLLParams", "GaussianNLLLoss", reg,
             {"input": "real", "target": "real", "var": "variance"}),
            ("ctc", "CTCParams", "CTCLoss", ("sequence",),
             {"log_probs": "log_probabilities", "targets": "class_indices",
              "input_lengths": "lengths", "target_lengths": "lengths"}),
            ("margin_ranking", "MarginRankingParams", "MarginRankingLoss", metric, pair),
            ("hinge_embedding", "HingeEmbeddingParams", "HingeEmbeddingLoss", metric, sign2),
            ("multilabel_margin", "MultilabelMarginParams", "MultiLabelMarginLoss", cls,
             {"input": "real", "target": "class_indices"}),
            ("soft_margin", "SoftMarginParams", "SoftMarginLoss", cls, sign2),
            ("multilabel_soft_margin", "MultilabelSoftMarginParams", "MultiLabelSoftMarginLoss",
             cls, {"input": "logits", "target": "binary_target"}),
            ("cosine_embedding", "CosineEmbeddingParams", "CosineEmbeddingLoss", metric, pair),
            ("multi_margin", "MultiMarginParams", "MultiMarginLoss", cls,
             {"input": "real", "target": "class_indices"}),
            ("triplet_margin", "TripletMarginParams", "TripletMarginLoss", metric, triplet),
            ("triplet_margin_with_distance", "TripletMarginWithDistanceParams",
             "TripletMarginWithDistanceLoss", metric, triplet),
        ]:  # fmt: skip
            register(
                name, r(name), params=r(params), aliases=(alias,), tags=tags, inputs=inputs
            )  # fmt: skip


class segmentation:
    """dice, iou, tversky, focal_tversky, combo and the dice_bce composite
    (:mod:`lossreg_builtin.segmentation`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("segmentation"), ("segmentation",)
        masked = (*tags, "masked")  # takes the call-time `mask` (OBJECTIVES.md)
        by_mode = {"input": "logits", "target": "mode_target"}
        register(
            "dice", r("dice"), params=r("DiceParams"), aliases=("dice_loss",), tags=masked,
            inputs=by_mode,
        )  # fmt: skip
        register(
            "iou", r("iou"), params=r("IoUParams"), aliases=("jaccard", "jaccard_loss"),
            tags=masked, inputs=by_mode,
        )  # fmt: skip
        register("tversky", r("tversky"), params=r("TverskyParams"), tags=masked, inputs=by_mode)
        register(
            "focal_tversky", r("focal_tversky"), params=r("FocalTverskyParams"), tags=masked,
            inputs=by_mode,
        )  # fmt: skip
        register("combo", r("combo"), params=r("ComboParams"), tags=masked, inputs=by_mode)
        register(
            "dice_bce",
            "dice + bce",
            tags=tags,
            summary="dice (binary, on logits) plus BCE with logits, on one (N, 1, *) logit map",
        )


class imbalance:
    """generalized_dice, mcc (:mod:`lossreg_builtin.imbalance`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("imbalance"), ("segmentation", "masked")
        by_mode = {"input": "logits", "target": "mode_target"}
        register(
            "generalized_dice", r("generalized_dice"), params=r("GeneralizedDiceParams"),
            aliases=("gdl",), tags=tags, inputs=by_mode,
        )  # fmt: skip
        register(
            "mcc", r("mcc"), params=r("MCCParams"), aliases=("matthews",), tags=tags,
            inputs=by_mode,
        )  # fmt: skip


class lovasz:
    """lovasz_hinge, lovasz_softmax (:mod:`lossreg_builtin.lovasz`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("lovasz"), ("segmentation",)
        register(
            "lovasz_hinge", r("lovasz_hinge"), params=r("LovaszHingeParams"), tags=tags,
            inputs={"input": "logits", "target": "binary_target"},
        )  # fmt: skip
        register(
            "lovasz_softmax", r("lovasz_softmax"), params=r("LovaszSoftmaxParams"), tags=tags,
            inputs={"input": "logits", "target": "class_indices"},
        )  # fmt: skip


class detection:
    """box_iou, giou, diou, ciou, eiou (:mod:`lossreg_builtin.detection`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("detection"), ("detection",)
        box, boxes = r("BoxParams"), {"input": "boxes", "target": "boxes"}
        register("box_iou", r("box_iou"), params=box, tags=tags, inputs=boxes)
        register(
            "giou", r("giou"), params=box, aliases=("generalized_box_iou",), tags=tags,
            inputs=boxes,
        )  # fmt: skip
        register("diou", r("diou"), params=box, tags=tags, inputs=boxes)
        register("ciou", r("ciou"), params=box, tags=tags, inputs=boxes)
        register("eiou", r("eiou"), params=box, tags=tags, inputs=boxes)


class robust:
    """charbonnier, cauchy, geman_mcclure, welsch, log_cosh, wing
    (:mod:`lossreg_builtin.robust`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("robust"), ("regression",)
        real2 = {"input": "real", "target": "real"}
        for name in ("charbonnier", "cauchy", "geman_mcclure", "welsch"):
            register(name, r(name), params=r("ScaledParams"), tags=tags, inputs=real2)
        register("log_cosh", r("log_cosh"), params=r("ResidualParams"), tags=tags, inputs=real2)
        register("wing", r("wing"), params=r("WingParams"), tags=tags, inputs=real2)


class ce_variants:
    """topk_ce, poly (:mod:`lossreg_builtin.ce_variants`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("ce_variants"), ("classification",)
        indices = {"input": "logits", "target": "class_indices"}
        register(
            "topk_ce", r("topk_ce"), params=r("TopKParams"), aliases=("ohem_ce",), tags=tags,
            inputs=indices,
        )  # fmt: skip
        register(
            "poly", r("poly"), params=r("PolyParams"), aliases=("poly1",), tags=tags,
            inputs=indices,
        )  # fmt: skip


class multilabel:
    """asymmetric (:mod:`lossreg_builtin.multilabel`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        register(
            "asymmetric", _refs("multilabel")("asymmetric"),
            params=_refs("multilabel")("AsymmetricParams"), aliases=("asl",),
            tags=("classification", "multilabel"),
            inputs={"input": "logits", "target": "binary_target"},
        )  # fmt: skip


class distillation:
    """kd_kl (:mod:`lossreg_builtin.distillation`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r = _refs("distillation")
        register(
            "kd_kl", r("kd_kl"), params=r("KDParams"), aliases=("distillation_kl",),
            tags=("classification", "distillation"),
            inputs={"input": "logits", "target": "logits"},
        )  # fmt: skip


class dense_detection:
    """varifocal, quality_focal, distribution_focal (:mod:`lossreg_builtin.dense_detection`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("dense_detection"), ("detection",)
        soft = {"input": "logits", "target": "binary_target"}
        register("varifocal", r("varifocal"), params=r("VarifocalParams"), tags=tags, inputs=soft)
        register(
            "quality_focal", r("quality_focal"), params=r("QualityFocalParams"), tags=tags,
            inputs=soft,
        )  # fmt: skip
        register(
            "distribution_focal", r("distribution_focal"), params=r("DistributionFocalParams"),
            tags=tags, inputs={"input": "logits", "target": "real"},
        )  # fmt: skip


class boundary:
    """boundary, hausdorff_dt, hausdorff_er (:mod:`lossreg_builtin.boundary`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("boundary"), ("segmentation",)
        seg = {"input": "logits", "target": "mode_target"}
        register(
            "boundary", r("boundary"), params=r("BoundaryParams"), tags=tags,
            inputs={"input": "logits", "target": "distance_map"},
        )  # fmt: skip
        register(
            "hausdorff_dt", r("hausdorff_dt"), params=r("HausdorffDTParams"),
            aliases=("hausdorff",), tags=tags, inputs=seg,
        )  # fmt: skip
        register(
            "hausdorff_er", r("hausdorff_er"), params=r("HausdorffERParams"), tags=tags,
            inputs=seg,
        )  # fmt: skip


class skeleton:
    """cldice and the dice_cldice composite (:mod:`lossreg_builtin.skeleton`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("skeleton"), ("segmentation",)
        register(
            "cldice", r("cldice"), params=r("ClDiceParams"), tags=tags,
            inputs={"input": "logits", "target": "mode_target"},
        )  # fmt: skip
        register(
            "dice_cldice",
            "0.5*dice + 0.5*cldice",
            tags=tags,
            summary="half dice, half clDice (binary, on logits), on one (N, 1, *spatial) logit map",
        )


class image:
    """ssim, total_variation (:mod:`lossreg_builtin.image`)."""

    @staticmethod
    @lossreg.hookimpl
    def register_losses(register: Callable[..., Any]) -> None:
        r, tags = _refs("image"), ("image",)
        register(
            "ssim", r("ssim"), params=r("SSIMParams"), tags=tags,
            inputs={"input": "real", "target": "real"},
        )  # fmt: skip
        register(
            "total_variation", r("total_variation"), params=r("TVParams"), aliases=("tv",),
            tags=tags, inputs={"input": "real"},
        )  # fmt: skip
