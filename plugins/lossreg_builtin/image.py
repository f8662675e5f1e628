"""Image losses for restoration and reconstruction: ``ssim`` (structural similarity) and
``total_variation`` (a smoothness prior on the input alone)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from lossreg import LossregError, Params, Reduction, check_floating, check_same_shape

from ._common import options, reduce, upcast

__all__ = ["ssim", "total_variation"]


class SSIMParams(Params):
    window: int = Field(11, ge=1, description="side of the Gaussian window, odd")
    sigma: float = Field(1.5, gt=0, description="standard deviation of the Gaussian window")
    data_range: float = Field(
        1.0, gt=0, description="the images' value range L: c1 = (k1 L)^2, c2 = (k2 L)^2"
    )
    k1: float = Field(0.01, gt=0, description="luminance constant factor")
    k2: float = Field(0.03, gt=0, description="contrast constant factor")
    reduction: Reduction = Field(
        "mean", description="`mean` over images, `sum`, or `none`: (N,), 1 - SSIM per image"
    )

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"window must be odd, got {v}")
        return v


class TVParams(Params):
    reduction: Reduction = Field(
        "mean", description="`mean` over images, `sum`, or `none`: (N,), one value per image"
    )


def _gaussian(window: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(window, dtype=dtype, device=device) - window // 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def ssim(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: str = "mean",
) -> torch.Tensor:
    """SSIM loss (Wang et al. 2004, "Image quality assessment: from error visibility to
    structural similarity"), per image: 1 - the mean of the SSIM map::

        SSIM = (2 mu_x mu_y + c1) (2 s_xy + c2) / ((mu_x^2 + mu_y^2 + c1) (s_x + s_y + c2))

    mu, s: local means, variances and covariance under a normalised Gaussian window
    (``window`` taps, ``sigma``), taken where the window fits (no padding), so the map is
    smaller than the image by ``window - 1`` per spatial dim; the mean runs over every
    position of it and every channel. c1 = (k1 L)^2, c2 = (k2 L)^2 with L = ``data_range``.
    Equal to MONAI ``SSIMLoss`` (2-D and 3-D; MONAI computes in float32) and to 1 - the mean
    of kornia's ``ssim`` map with ``padding="valid"`` and ``eps=0`` (kornia's loss
    ``ssim_loss`` is (1 - SSIM) / 2 of the padded map, another quantity).

    Shape: input and target (N, C, H, W) or (N, C, D, H, W), equal, each spatial size at
    least ``window``; ``reduction='none'`` gives (N,).

    >>> x = torch.linspace(0, 1, 64).view(1, 1, 8, 8)
    >>> ssim(x, x.flip(-1), window=3)
    tensor(0.0416)
    """
    options(SSIMParams, "ssim", locals(), local=True)
    name = "ssim"
    check_same_shape(name, input, target)
    check_floating(name, "input", input)
    check_floating(name, "target", target)
    if input.dim() not in (4, 5):
        raise LossregError(
            f"{name}: input must have shape (N, C, H, W) or (N, C, D, H, W), got shape "
            f"{tuple(input.shape)}"
        )
    spatial = tuple(input.shape[2:])
    if min(spatial) < window:
        raise LossregError(
            f"{name}: every spatial size must be at least window={window}, got input shape "
            f"{tuple(input.shape)}"
        )
    x, y = upcast(input, target)
    n, c = x.shape[:2]
    nd = len(spatial)
    # the five local moments in one tensor: one pass of a separable filter over all of them
    moments = torch.cat([x, y, x * x, y * y, x * y], 1)  # (N, 5C, *spatial)
    g = _gaussian(window, sigma, x.dtype, x.device)
    conv = F.conv2d if nd == 2 else F.conv3d
    for axis in range(nd):
        shape = [1] * nd
        shape[axis] = window
        moments = conv(moments, g.view(1, 1, *shape).expand(5 * c, 1, *shape), groups=5 * c)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.view(n, 5, c, -1).unbind(1)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_xy, mu_xx, mu_yy = mu_x * mu_y, mu_x * mu_x, mu_y * mu_y
    num = (2 * mu_xy + c1) * (2 * (e_xy - mu_xy) + c2)
    den = (mu_xx + mu_yy + c1) * ((e_xx - mu_xx) + (e_yy - mu_yy) + c2)
    loss = 1 - (num / den).flatten(1).mean(1)
    return reduce(loss, reduction, name).to(input.dtype)


def total_variation(input: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Anisotropic total variation (Rudin, Osher and Fatemi 1992) of the input alone, per
    image: the sum of absolute differences between neighbours along every spatial dim::

        TV(u) = sum_d sum |u[..., i + 1, ...] - u[..., i, ...]|   (over channels too)

    A regulariser with no target: in a composite it takes its tensor by routing,
    ``inputs: {input: pred}``. Equal to kornia ``total_variation`` (``reduction="sum"``,
    which gives (N, C) for 2-D images) summed over channels.

    Shape: input (N, C, *spatial), 1 to 3 spatial dims; ``reduction='none'`` gives (N,).

    >>> total_variation(torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]]))
    tensor(6.)
    """
    options(TVParams, "total_variation", locals(), local=True)
    name = "total_variation"
    check_floating(name, "input", input)
    if not 3 <= input.dim() <= 5:
        raise LossregError(
            f"{name}: input must have shape (N, C, *spatial) with 1 to 3 spatial dims, got "
            f"shape {tuple(input.shape)}"
        )
    (x,) = upcast(input)
    n = x.shape[0]
    axes = [a for a in range(2, x.dim()) if x.shape[a] > 1]
    if reduction == "none" or n == 0:
        per = x.new_zeros(n)
        for a in axes:
            per = per + torch.diff(x, dim=a).abs().flatten(1).sum(1)
        return reduce(per, reduction, name).to(input.dtype)
    # mean and sum: one total (torch.diff is the fastest difference here, measured)
    total = x.new_zeros(())
    for a in axes:
        total = total + torch.diff(x, dim=a).abs().sum()
    return (total / n if reduction == "mean" else total).to(input.dtype)
