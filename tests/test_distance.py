"""lossreg.distance against scipy.ndimage.distance_transform_edt (test-only dependency), and
signed_distance / boundary_distance against Kervadec's one_hot2dist and MONAI's
distance_field written with scipy."""

import numpy as np
import pytest
import torch

import lossreg
from lossreg.distance import boundary_distance, edt, signed_distance

ndimage = pytest.importorskip("scipy.ndimage")


def _masks(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    yield torch.zeros(shape, dtype=torch.bool)  # empty
    yield torch.ones(shape, dtype=torch.bool)  # full
    for p in (0.02, 0.5, 0.97):
        yield torch.rand(shape, generator=g) < p
    grid = torch.stack(torch.meshgrid(*[torch.arange(s) for s in shape], indexing="ij"))
    centre = torch.tensor([s / 3 for s in shape]).view(-1, *[1] * len(shape))
    yield ((grid - centre) ** 2).sum(0) < (min(shape) / 3) ** 2  # a ball: long distances


@pytest.mark.parametrize("shape", [(13, 17), (1, 9), (9, 1), (7, 6, 8), (1, 1, 5)])
def test_edt_equals_scipy(shape):
    for m in _masks(shape):
        want = ndimage.distance_transform_edt(m.numpy())
        got = edt(m.double())
        assert got.dtype == torch.float64
        # squared distances are integers and agree exactly; torch's vectorised sqrt may be
        # one ulp off the correctly rounded sqrt numpy uses
        np.testing.assert_array_equal(np.rint(got.numpy() ** 2), np.rint(want**2))
        np.testing.assert_allclose(got.numpy(), want, rtol=4e-16, atol=0)
        np.testing.assert_allclose(edt(m).numpy(), want, rtol=1e-7, atol=0)  # float32


def test_edt_batched_slices_are_independent():
    g = torch.Generator().manual_seed(1)
    m = torch.rand(4, 3, 11, 12, generator=g) < 0.1
    m[0, 1] = False
    m[2, 2] = True
    got = edt(m, spatial_dims=2)
    for i in range(4):
        for j in range(3):
            want = ndimage.distance_transform_edt(m[i, j].numpy())
            np.testing.assert_allclose(got[i, j].numpy(), want, rtol=1e-7)


def one_hot2dist(seg):
    """Kervadec's reference (boundary-loss repo, utils.one_hot2dist), with the pinned
    convention that a slice with no background is 0 too."""
    res = np.zeros_like(seg, dtype=np.float64)
    for k in range(len(seg)):
        pos = seg[k].astype(bool)
        if pos.any() and not pos.all():
            neg = ~pos
            res[k] = (
                ndimage.distance_transform_edt(neg) * neg
                - (ndimage.distance_transform_edt(pos) - 1) * pos
            )
    return res


def distance_field(seg):
    """MONAI HausdorffDTLoss.distance_field, per slice."""
    res = np.zeros_like(seg, dtype=np.float64)
    for k in range(len(seg)):
        fg = seg[k] > 0.5
        if fg.any() and not fg.all():
            res[k] = ndimage.distance_transform_edt(fg) + ndimage.distance_transform_edt(~fg)
    return res


@pytest.mark.parametrize("shape", [(2, 3, 12, 10), (2, 2, 6, 7, 5)])
def test_signed_and_boundary_distance(shape):
    g = torch.Generator().manual_seed(2)
    m = torch.rand(shape, generator=g) < 0.3
    m[0, 0] = False  # empty slice
    m[1, 1] = True  # full slice
    flat = m.reshape(-1, *shape[2:]).numpy()
    want = one_hot2dist(flat).reshape(shape)
    got = signed_distance(m.double())
    # torch's sqrt may be one ulp off: 1 - sqrt(2) then differs by 2.2e-16 absolute
    np.testing.assert_allclose(got.numpy(), want, rtol=4e-16, atol=3e-16)
    assert signed_distance(m).dtype == torch.float32
    assert lossreg.signed_distance(m.float()).dtype == torch.float32
    np.testing.assert_allclose(
        boundary_distance(m, dtype=torch.float64).numpy(),
        distance_field(flat).reshape(shape),
        rtol=4e-16,
        atol=0,
    )


def test_signed_distance_checks_and_no_grad():
    with pytest.raises(lossreg.LossregError, match=r"signed_distance: mask must have shape"):
        signed_distance(torch.zeros(4, 4))
    with pytest.raises(lossreg.LossregError, match=r"0 and 1 only, found 0.5"):
        signed_distance(torch.full((1, 1, 2, 2), 0.5))
    m = torch.zeros(1, 1, 3, 3, requires_grad=True)
    assert not signed_distance(m).requires_grad
    assert signed_distance(torch.zeros(0, 2, 3, 3)).shape == (0, 2, 3, 3)


def test_signed_distance_is_a_lazy_export():
    # import lossreg stays free of the module: it is loaded on first access (PEP 562)
    assert lossreg._LAZY["signed_distance"] == ".distance"
    assert lossreg.signed_distance is signed_distance
