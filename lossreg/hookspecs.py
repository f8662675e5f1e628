"""The one hook a lossreg plugin implements, documented as a manual.

A plugin is a module (or object) named by an entry point in the ``lossreg`` group::

    # pyproject.toml of your package
    [project.entry-points.lossreg]
    acme = "acme_losses.plugin"

holding an implementation of :func:`register_losses`, marked with :data:`lossreg.hookimpl`.
lossreg finds it on the first lookup (``lossreg.available()``, ``lossreg.build(...)``), calls
the hook once, and attributes every loss it registers to your distribution and entry point.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("lossreg")


@hookspec
def register_losses(register: Any) -> None:
    """Register this plugin's losses by calling ``register`` once per loss.

    ``register(name, factory, *, params=None, aliases=(), tags=(), summary=None,
    override=False, differentiable=True, inputs=None)`` takes:

    - ``name``: canonical snake_case name; ``aliases``: other names that resolve to it.
    - ``factory``, one of:

      * a plain function ``fn(input, target, *, p1=..., p2=...)`` returning a tensor; lossreg
        wraps it in a module that holds the validated parameters (lists declared as
        :data:`lossreg.TensorList` become registered buffers);
      * an ``nn.Module`` subclass, constructed with the validated parameters as keywords;
      * a *named composite*: an expression string (``"dice + bce"``) or a composite config
        mapping (``{"expr": ..., "terms": {...}}``);
      * a *preset*: a mapping ``{"name": "bce", "from_logits": False}``, an existing loss with
        some defaults changed;
      * a lazy reference ``lossreg.lazy("package.module:attribute")`` to a function or module
        class, imported on the loss's first lookup instead of at discovery (``params`` may be
        one too). Keeps ``lossreg.available()`` from importing what your losses need.

    - ``params``: a pydantic model (subclass :class:`lossreg.Params` for finite floats and
      ``extra="forbid"``). Omit it and the schema is derived from the factory's keyword
      parameters, type hints and defaults.
    - ``tags`` (e.g. ``"segmentation"``), ``summary`` (defaults to the docstring's first line),
      ``differentiable=False`` for metrics-like losses that have no gradient.
    - ``inputs``: what each tensor argument holds, as data, e.g.
      ``{"input": "logits", "target": "binary_target"}``; the kinds are listed in
      ``lossreg._inputs.INPUT_KINDS``. ``lossreg eval``, ``plot``, the catalog and
      :mod:`lossreg.testing` read it to make valid inputs for your loss.
    - ``override=True`` replaces an existing name instead of raising
      :class:`lossreg.DuplicateLossError`.

    If the hook raises, nothing it registered is kept, and the plugin is reported as failed.

    A complete plugin module::

        import torch
        import lossreg

        def charbonnier(input, target, *, eps: float = 1e-3, reduction: str = "mean"):
            '''Charbonnier loss: sqrt((x - y)^2 + eps^2).'''
            lossreg.check_same_shape("acme_charbonnier", input, target)
            loss = torch.sqrt((input - target) ** 2 + eps**2)
            return lossreg.reduce(loss, reduction, "acme_charbonnier")  # mean, sum or none

        @lossreg.hookimpl
        def register_losses(register):
            register(
                "acme_charbonnier", charbonnier, tags=("regression",),
                inputs={"input": "real", "target": "real"},
            )

    ``lossreg.reduce`` and the ``lossreg.check_*`` helpers are what the built-in losses use:
    an unknown reduction, a shape mismatch or an out-of-range class index is refused with an
    error naming your loss.
    """
