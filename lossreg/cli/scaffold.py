"""``lossreg new-plugin NAME``: scaffold a company plugin package.

The package has a ``pyproject.toml`` declaring the ``lossreg`` entry point, a loss module
with a params model and the hook, and a test that runs the conformance kit on the loss.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import LossregError

__all__ = ["plugin_names", "scaffold"]

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*\Z")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "{dist}: company losses for lossreg"
requires-python = ">=3.10"
dependencies = ["lossreg", "torch", "pydantic>=2"]

# lossreg finds plugins through this entry-point group; the value is the module holding the
# `register_losses` hook.
[project.entry-points.lossreg]
{plugin} = "{module}.losses"

[tool.setuptools]
packages = ["{module}"]

[tool.pytest.ini_options]
addopts = "-p no:cacheprovider"
filterwarnings = ["error"]
"""

LOSSES = '''\
"""{dist}'s losses, registered with lossreg through the `lossreg` entry point."""

from __future__ import annotations

import math

import torch
from pydantic import Field

import lossreg


class {title}Params(lossreg.Params):
    """Parameters of ``{loss}``; each description is its documentation."""

    delta: float = Field(1.0, gt=0, description="scale of the residual: |d| << delta is quadratic")
    reduction: lossreg.Reduction = lossreg.reduction_field("input's shape")


def {loss}(
    input: torch.Tensor, target: torch.Tensor, *, delta: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Log-cosh loss: delta^2 log(cosh(d / delta)), d = input - target.

    Quadratic near 0 and linear in the tails, smooth everywhere. Computed as
    |x| + softplus(-2|x|) - log 2 with x = d / delta, which never overflows.

    Shape: input and target ``(*)``, equal; ``reduction='none'`` gives ``(*)``.

    >>> {loss}(torch.tensor([0.0, 2.0]), torch.zeros(2))
    tensor(0.6625)
    """
    lossreg.check_same_shape("{loss}", input, target)
    x = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
    x = (x - target.to(x.dtype)) / delta
    a = x.abs()
    loss = delta**2 * (a + torch.nn.functional.softplus(-2 * a) - math.log(2.0))
    return lossreg.reduce(loss, reduction, "{loss}").to(input.dtype)


@lossreg.hookimpl
def register_losses(register):  # type: ignore[no-untyped-def]
    register("{loss}", {loss}, params={title}Params, tags=("regression", "{plugin}"))
'''

TEST = '''\
"""The conformance kit on {loss}: reference, gradcheck, half precision, compile, round trips."""

import math

import torch

import lossreg
from lossreg.testing import Case, check_loss


def inputs(dtype, gen):
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64) * 3
    y = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    return x.to(dtype), y.to(dtype)


def reference(input, target, *, delta=1.0, reduction="mean"):
    # float64, written out independently of the plugin: delta^2 log(cosh(d / delta))
    loss = delta**2 * torch.log(torch.cosh((input - target) / delta))
    return {{"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}}[reduction]()


def test_registered_through_the_entry_point():
    info = lossreg.describe("{loss}")
    assert info.provider == "{plugin}"
    assert info.distribution == "{dist}"


def test_conformance():
    check_loss("{loss}", Case(inputs, params={{"delta": 1.5}}, reference=reference))


def test_value_by_hand():
    # log(cosh(2)) = 1.3250027..., so the mean over (0, 2) is 0.6625014
    value = lossreg.build("{loss}")(torch.tensor([0.0, 2.0]), torch.zeros(2))
    assert math.isclose(float(value), math.log(math.cosh(2.0)) / 2, rel_tol=1e-6)
'''

README = """\
# {dist}

Company losses for [lossreg](https://github.com/lossreg/lossreg), found through the `lossreg`
entry-point group once installed:

```bash
pip install -e .
lossreg show {loss}
python -m pytest tests
```

Use it in a config:

```yaml
loss:
  expr: {loss} + 0.1*l1
  terms:
    {loss}: {{name: {loss}, delta: 0.5}}
```
"""


def plugin_names(name: str) -> dict[str, str]:
    """Distribution, module, plugin and loss names derived from ``name``."""
    if not _NAME.match(name):
        raise LossregError(
            f"new-plugin: {name!r} is not a valid distribution name; use letters, digits, "
            "'-', '_' or '.', starting with a letter (e.g. acme-losses)"
        )
    module = re.sub(r"[-.]+", "_", name).lower()
    short = re.sub(r"_(losses|loss)$", "", module) or module
    return {
        "dist": name,
        "module": module,
        "plugin": short,
        "loss": f"{short}_log_cosh",
        "title": "".join(p.title() for p in f"{short}_log_cosh".split("_")),
    }


def _refuse_taken(names: dict[str, str]) -> None:
    """Refuse the name of an installed distribution or an importable module: ``pip install
    -e`` of the scaffold would replace it (``new-plugin torch`` must not shadow torch)."""
    import importlib.metadata as md
    import importlib.util

    try:
        md.distribution(names["dist"])
    except md.PackageNotFoundError:
        pass
    else:
        raise LossregError(
            f"new-plugin: a distribution named {names['dist']!r} is already installed; "
            "installing the scaffold would replace it. Choose another name (e.g. "
            f"{names['dist']}-losses or yourcompany-losses)"
        )
    try:
        spec = importlib.util.find_spec(names["module"])
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        raise LossregError(
            f"new-plugin: a module named {names['module']!r} is already importable "
            f"({spec.origin or 'a namespace package'}); the scaffold's package would shadow it "
            "or be shadowed. Choose another name"
        )


def scaffold(name: str, directory: Path | None = None) -> Path:
    """Create the plugin package for ``name`` in ``directory`` (default ``./name``)."""
    names = plugin_names(name)
    _refuse_taken(names)
    root = Path(directory) if directory is not None else Path(name)
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise LossregError(f"new-plugin: {root} is a symbolic link or a file; nothing was written")
    if root.exists() and any(root.iterdir()):
        raise LossregError(
            f"new-plugin: {root} already exists and is not empty; nothing was written"
        )
    files = {
        "pyproject.toml": PYPROJECT,
        f"{names['module']}/__init__.py": '"""{dist}: company losses for lossreg."""\n',
        f"{names['module']}/losses.py": LOSSES,
        f"tests/test_{names['module']}.py": TEST,
        "README.md": README,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**names), encoding="utf-8")
    return root
