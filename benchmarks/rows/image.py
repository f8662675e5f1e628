"""Image rows: ssim vs kornia and MONAI, total_variation vs kornia, on (8,1,256,256)
images (the leaf is the prediction, the target a fixed image)."""

from __future__ import annotations

from harness import Entry, Row, lossreg_entry, nbytes, peer_entry

ORDER = 45


def _images(shape, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g)
    x = (y + 0.1 * torch.randn(shape, generator=g)).requires_grad_()
    return x, y


def row_ssim(cfg, peers):
    import torch.nn.functional as F

    x, y = _images(cfg["binary"])
    base = Entry("torch F.mse_loss (baseline)", F.mse_loss, x, y)

    def kornia_ssim(m):
        import kornia

        return lambda a, b: 1 - kornia.metrics.ssim(a, b, 11, padding="valid").mean()

    entries = [
        lossreg_entry("lossreg ssim (11x11 Gaussian, valid)", x, y, "ssim"),
        peer_entry(peers, "kornia", "kornia 1 - ssim(padding='valid').mean()", kornia_ssim, x, y),
        peer_entry(peers, "monai", "monai SSIMLoss(spatial_dims=2)", lambda m: m.SSIMLoss(2), x, y),
    ]
    entries = [e for e in entries if e]
    extra = [(f"lossreg / {e.label.split()[0]}", entries[0], e) for e in entries[1:]]
    return base, entries, nbytes(x), extra


def naive_tv(x, y):
    return (
        (x[..., 1:, :] - x[..., :-1, :]).abs().sum() + (x[..., 1:] - x[..., :-1]).abs().sum()
    ) / x.shape[0]


def row_total_variation(cfg, peers):
    x, y = _images(cfg["binary"])
    base = Entry("torch by hand (two diffs, abs, sums) (baseline)", naive_tv, x, y)
    entries = [
        lossreg_entry("lossreg total_variation (mean over images)", x, None, "total_variation"),
        peer_entry(
            peers,
            "kornia",
            "kornia total_variation(x).sum(1).mean()",
            lambda m: lambda a, b: m.total_variation(a).sum(1).mean(),
            x,
            y,
        ),
    ]
    entries = [e for e in entries if e]
    ours = entries[0]
    if ours.fn is not None:  # total_variation takes the input alone
        module = ours.fn
        ours.fn = lambda a, b, module=module: module(a)
    extra = [("lossreg / kornia", entries[0], entries[1])] if len(entries) == 2 else ()
    return base, entries, nbytes(x), extra


ROWS = [
    Row("ssim", "ssim vs MSE, kornia ssim and MONAI SSIMLoss, (8,1,256,256)", row_ssim),
    Row("total_variation", "total_variation vs by hand and kornia, (8,1,256,256)",
        row_total_variation),
]  # fmt: skip
