"""Hydra: ``hydra.utils.instantiate`` calling :func:`lossreg.build`.

lossreg's own configs never import anything; in a Hydra config, Hydra's ``instantiate`` is
what calls lossreg's public function, with the loss spec as its argument::

    loss:
      _target_: lossreg.build
      _args_:
        - expr: 0.5*dice + w*bce
          weights: {w: {schedule: linear, start: 0.0, end: 1.0, steps: 100}}

The spec inside ``_args_`` may itself hold no ``_target_`` (lossreg refuses it).

>>> hydra_node({"name": "focal", "gamma": 3.0})
{'_target_': 'lossreg.build', '_args_': [{'name': 'focal', 'gamma': 3.0}]}
"""

from __future__ import annotations

from typing import Any

__all__ = ["hydra_node"]


def hydra_node(spec: Any) -> dict[str, Any]:
    """The Hydra config node that ``hydra.utils.instantiate`` turns into ``build(spec)``."""
    return {"_target_": "lossreg.build", "_args_": [spec]}
