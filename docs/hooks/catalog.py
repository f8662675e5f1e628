"""mkdocs hook: generate the loss catalog page and the JSON Schema from the registry.

Nothing here is written by hand: ``catalog.md`` is rendered by ``lossreg.cli.catalog`` from
every registered loss (built-ins and whatever plugins are installed where the docs are
built), and ``schema/lossreg.schema.json`` is ``lossreg schema``'s output.
"""

from __future__ import annotations

import json

from mkdocs.structure.files import File, Files


def on_files(files: Files, config, **kwargs) -> Files:  # type: ignore[no-untyped-def]
    from lossreg.cli.catalog import render_catalog
    from lossreg.cli.json_schema import loss_spec_schema

    files.append(File.generated(config, "catalog.md", content=render_catalog()))
    schema = json.dumps(loss_spec_schema(), indent=2) + "\n"
    files.append(File.generated(config, "schema/lossreg.schema.json", content=schema))
    return files
