"""The loss catalog page, generated from the registry: never written by hand.

Parameters come from each loss's pydantic model (the same schema ``build`` validates with),
formulas, shapes and examples from its docstring. ``python -m lossreg.cli.catalog`` prints it;
the docs build calls :func:`render_catalog` from ``docs/hooks/catalog.py``.
"""

from __future__ import annotations

import inspect
import warnings

from .._build import describe
from .._registry import LossInfo, available
from .paramdoc import example_yaml, input_text, param_rows, spec_facts

__all__ = ["render_catalog"]

# Section order; a loss goes to the first of its tags listed here, else to "Other".
SECTIONS = {
    "regression": "Regression",
    "classification": "Classification",
    "segmentation": "Segmentation",
    "detection": "Detection",
    "image": "Images",
    "torch_nn": "The rest of torch.nn",
}


def _section(info: LossInfo) -> str:
    for tag in SECTIONS:
        if tag in info.tags or info.provider == tag:
            return tag
    return "other"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or " "


def _entry(info: LossInfo) -> str:
    summary, doc = info.summary, info.doc
    lines = [f"### `{info.name}`", "", summary, ""]
    origin = f"{info.distribution or 'in-process'} {info.version or ''}".strip()
    facts = [
        ("aliases", ", ".join(f"`{a}`" for a in info.aliases) or "none"),
        ("tags", ", ".join(info.tags) or "none"),
        ("provider", f"`{info.provider}` ({origin})"),
        ("kind", info.kind),
        ("inputs", input_text(info, "`")),
        ("differentiable", "yes" if info.differentiable else "**no** (no gradient)"),
        *spec_facts(info, "`"),
    ]
    lines += [f"- **{k}**: {v}" for k, v in facts]
    rows = param_rows(info.params)
    lines.append("")
    if rows:
        lines += [
            "| parameter | type | default | constraints | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{r.name}` | {_cell(r.type)} | {_cell(r.default)} | {_cell(r.constraints)} "
            f"| {_cell(r.description)} |"
            for r in rows
        ]
    else:
        lines.append("No parameters.")
    if doc:
        lines += ["", "```text", inspect.cleandoc(doc), "```"]
    lines += ["", "```yaml", example_yaml(info.name, info.params), "```", ""]
    return "\n".join(lines)


def render_catalog() -> str:
    """The whole catalog page as Markdown."""
    with warnings.catch_warnings():  # a broken plugin is listed by `lossreg plugins`
        warnings.simplefilter("ignore")
        names = available()
    infos = [describe(n) for n in names]
    groups: dict[str, list[LossInfo]] = {}
    for info in infos:
        groups.setdefault(_section(info), []).append(info)
    out = [
        "# Loss catalog",
        "",
        f"{len(infos)} losses, generated from the registry by `lossreg/cli/catalog.py` when the "
        "docs are built: parameters from each loss's schema, formulas and examples from its "
        "docstring. `lossreg show NAME` prints the same on the command line.",
        "",
    ]
    order = [*SECTIONS, "other"]
    out += ["| section | losses |", "| --- | --- |"]
    for key in order:
        if key in groups:
            title = SECTIONS.get(key, "Other")
            links = ", ".join(f"[`{i.name}`](#{_anchor(i.name)})" for i in groups[key])
            out.append(f"| {title} | {links} |")
    out.append("")
    for key in order:
        if key not in groups:
            continue
        out += [f"## {SECTIONS.get(key, 'Other')}", ""]
        out += [_entry(info) for info in groups[key]]
    return "\n".join(out)


def _anchor(name: str) -> str:
    # Python-Markdown's toc slug of a heading `name` in backticks
    import re

    slug = re.sub(r"[^\w\s-]", "", name.lower()).strip()
    return re.sub(r"[-\s]+", "-", slug)


if __name__ == "__main__":
    print(render_catalog())
