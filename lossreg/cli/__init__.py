"""The ``lossreg`` command line: a thin typer layer over the public API.

Every user mistake prints one ``error:`` line and a ``hint:`` line on stderr and exits
non-zero; ``--debug`` (anywhere on the command line) shows the traceback instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

try:
    import rich  # noqa: F401 - the printing in .output needs it
    import typer
except ImportError as _missing:  # one line saying what to install, not a traceback
    raise SystemExit(
        f"lossreg: the command line needs the `cli` extra ({_missing.name or 'typer'} is not "
        "installed): pip install 'lossreg[cli]'"
    ) from None

from .output import CliError, err, escape, needs_matplotlib, out, report, say, writable

__all__ = ["CliError", "app", "main"]

MAX_ELEMENTS = 2**26  # largest synthetic tensor `eval --shape` makes (256 MB of float32)

app = typer.Typer(
    name="lossreg",
    help="lossreg: a plugin-based registry of PyTorch losses. "
    "List, inspect, validate, plot and train with losses named in configs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")]
ResolversOpt = Annotated[
    bool,
    typer.Option(
        "--allow-resolvers",
        help="Run ${resolver:...} interpolations (e.g. oc.env); refused by default.",
    ),
]


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback on errors.")
    ] = False,
) -> None:
    """lossreg: a plugin-based registry of PyTorch losses."""


# -- list, show, plugins ---------------------------------------------------------------------
@app.command("list")
def list_(
    tag: Annotated[str | None, typer.Option(help="Only losses with this tag.")] = None,
) -> None:
    """Table of registered losses: name, aliases, tags, provider, summary."""
    from rich.table import Table

    import lossreg

    names = lossreg.available(tag=tag)
    if not names:
        from .._registry import registry

        tags = ", ".join(registry.tags())
        raise CliError(f"no loss has the tag {tag!r}", f"tags in use: {tags}")
    table = Table(title=f"{len(names)} losses" + (f" tagged {tag!r}" if tag else ""))
    for col in ("name", "aliases", "tags", "provider", "summary"):
        table.add_column(col, overflow="fold")
    for name in names:
        try:
            info = lossreg.describe(name)
        except Exception as exc:  # one broken entry does not hide the others
            row = (escape(name), "", "", "", f"[red]cannot describe: {escape(str(exc))}[/red]")
            table.add_row(*row)
            continue
        table.add_row(
            *(escape(x) for x in (info.name, ", ".join(info.aliases), ", ".join(info.tags))),
            escape(info.provider),
            escape(info.summary),
        )
    out.print(table)


@app.command()
def show(name: Annotated[str, typer.Argument(help="A loss name or alias.")]) -> None:
    """Parameters (types, defaults, constraints, docs), formula and an example config."""
    import inspect

    from rich.table import Table

    import lossreg

    from .paramdoc import example_yaml, input_text, param_rows, spec_facts

    info = lossreg.describe(name)
    out.print(f"[bold]{escape(info.name)}[/bold]  {escape(info.summary)}")
    facts = {
        "aliases": ", ".join(info.aliases) or "-",
        "tags": ", ".join(info.tags) or "-",
        "provider": f"{info.provider} ({info.distribution or 'in-process'} {info.version or ''})",
        "kind": info.kind,
        "inputs": input_text(info),
        "differentiable": "yes" if info.differentiable else "no (no gradient)",
        **dict(spec_facts(info)),
    }
    for key, value in facts.items():
        out.print(f"  {key:<15}{escape(value)}")
    rows = param_rows(info.params)
    if rows:
        table = Table(title="parameters", title_justify="left")
        for col in ("name", "type", "default", "constraints", "description"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(
                *(escape(x) for x in (r.name, r.type, r.default, r.constraints)),
                escape(r.description),
            )
        out.print(table)
    else:
        out.print("  parameters     none")
    if info.doc:
        out.print("\n[bold]doc[/bold]")
        out.print(escape(inspect.cleandoc(info.doc)).replace("\\n", "\n"))
    out.print("\n[bold]example config[/bold]")
    out.print(example_yaml(info.name, info.params), markup=False)


@app.command()
def plugins() -> None:
    """Each plugin: distribution, version, entry point, load status, its losses."""
    import warnings

    from rich.table import Table

    import lossreg

    from .._plugins import plugin_statuses

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lossreg.LossregPluginWarning)  # shown in the table
        lossreg.available()
    table = Table(title="lossreg plugins (entry-point group 'lossreg')")
    for col in ("plugin", "distribution", "version", "entry point", "status", "losses"):
        table.add_column(col, overflow="fold")
    colors = {"loaded": "green", "failed": "red", "disabled": "yellow"}
    for s in plugin_statuses():
        status = f"[{colors.get(s.status, 'white')}]{s.status}[/]"
        if s.error:
            status += f"\n{escape(s.error)}"
        cells = (s.name, s.distribution or "-", s.version or "-", s.value)
        table.add_row(*(escape(c) for c in cells), status, escape(", ".join(s.losses)))
    out.print(table)


# -- check, eval, schema ---------------------------------------------------------------------
ConfigArg = Annotated[
    Path, typer.Argument(help="YAML config; the spec is under `loss:` or is the whole file.")
]


@app.command()
def check(
    configs: Annotated[
        list[Path],
        typer.Argument(help="YAML configs; each spec is under `loss:` or is the whole file."),
    ],
    allow_resolvers: ResolversOpt = False,
) -> None:
    """Load YAML configs, validate them, print each built tree."""
    import lossreg

    from .config_file import load_spec

    failed = 0
    for config in configs:
        try:
            module = lossreg.build(load_spec(config, allow_resolvers=allow_resolvers))
        except lossreg.LossregError as exc:
            if len(configs) == 1:
                raise
            failed += 1
            report(exc, prefix=f"{config}: ")
            continue
        out.print(_tree(module, str(config)))
        out.print(f"[green]ok[/green]: {escape(str(config))} is a valid lossreg config")
    if failed:
        raise CliError(f"{failed} of {len(configs)} configs are invalid", "see the errors above")


def _tree(module: Any, label: str) -> Any:
    from rich.tree import Tree

    import lossreg

    config = lossreg.to_config(module)
    tree = Tree(f"[bold]{escape(label)}[/bold]")
    _add(tree, module, config)
    return tree


def _add(tree: Any, module: Any, config: dict[str, Any], label: str = "") -> None:
    import lossreg

    from .plot import objective_lines

    if "expr" in config:
        node = tree.add(f"{label}composite [cyan]{escape(config['expr'])}[/cyan]")
        for key, term in module.terms.items():
            route = config["terms"].get(key, {}).get("inputs")
            routed = f" [dim]inputs {escape(str(route))}[/dim]" if route else ""
            _add(node, term, lossreg.to_config(term), f"{escape(key)}{routed}: ")
        for line in objective_lines(module):  # weights, schedules, balance, deep supervision
            node.add(escape(line))
        return
    params = ", ".join(f"{k}={v!r}" for k, v in config.items() if k not in ("name", "inputs"))
    tree.add(f"{label}[bold]{escape(config['name'])}[/bold]({escape(params)})")


@app.command("eval")
def eval_(
    config: ConfigArg,
    shape: Annotated[
        str | None,
        typer.Option(help="Input shape N,C,*spatial (e.g. 4,3,32,32); target follows the loss."),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=2**64 - 1, help="Seed of the synthetic tensors.")
    ] = 0,
    allow_resolvers: ResolversOpt = False,
) -> None:
    """Run the built loss on synthetic tensors; print the total and every term."""
    import math

    from rich.table import Table

    import lossreg

    from .config_file import load_spec
    from .synthetic import as_shape, describe_tensor, synth_call

    input_shape = as_shape(shape) if shape else None  # a bad --shape fails before any work
    if input_shape is not None and math.prod(input_shape) > MAX_ELEMENTS:
        raise CliError(
            f"--shape {shape} makes a tensor of {math.prod(input_shape):,} elements; "
            f"at most {MAX_ELEMENTS:,}",
            "a few small dimensions show the loss, e.g. --shape 4,3,32,32",
        )
    module = lossreg.build(load_spec(config, allow_resolvers=allow_resolvers))
    value, tensors, _ = synth_call(module, input_shape, seed)
    out.print(f"[bold]{escape(str(config))}[/bold] on synthetic tensors (seed {seed})")
    table = Table()
    table.add_column("tensor")
    table.add_column("shape, dtype")
    for key, t in tensors.items():
        table.add_row(escape(key), describe_tensor(t))
    out.print(table)
    values = Table()
    values.add_column("term")
    values.add_column("value", justify="right")
    for key, v in getattr(module, "last_values", {}).items():
        values.add_row(escape(key), _num(v))
    values.add_row("[bold]total[/bold]", f"[bold]{_num(value)}[/bold]")
    out.print(values)


def _num(t: Any) -> str:
    if t.numel() == 1:
        return f"{float(t):.6g}"
    return f"{tuple(t.shape)} tensor, mean {float(t.float().mean()):.6g}"


@app.command()
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """JSON Schema (draft 2020-12) of a loss spec, for YAML editors and CI."""
    from .json_schema import loss_spec_schema

    if output is not None:
        output = writable(output, force)
    text = json.dumps(loss_spec_schema(), indent=2)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
        say(err, f"wrote {output}")


# -- plot, demo, new-plugin ------------------------------------------------------------------
@app.command()
def plot(
    names: Annotated[list[str] | None, typer.Argument(help="Loss names or aliases.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG file to write.")] = Path(
        "losses.png"
    ),
    schedule: Annotated[
        Path | None, typer.Option(help="Draw each weight of this config over steps instead.")
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Steps to draw (--schedule).")] = None,
    force: ForceOpt = False,
) -> None:
    """Loss value against prediction for the named losses, as a PNG; or, with --schedule
    CONFIG, each named weight of a composite over training steps.

    `focal` alone reproduces Figure 1 of Lin et al. 2017 (loss against p_t for several gamma).
    """
    needs_matplotlib()
    output = writable(output, force, png=True)
    from .plot import plot_losses, plot_schedule

    if schedule is not None:
        say(out, f"wrote {plot_schedule(schedule, output, steps)}")
        return
    if not names:
        raise CliError("name at least one loss, or pass --schedule CONFIG", "lossreg plot focal")
    say(out, f"wrote {plot_losses(names, output)}")


@app.command()
def demo(
    config: Annotated[
        Path | None, typer.Option(help="Objective config (default: the built-in demo.yaml).")
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="Training steps per run.")] = 150,
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG of the loss curves.")] = Path(
        "demo_losses.png"
    ),
    seed: Annotated[
        int, typer.Option(min=0, max=2**64 - 1, help="Seed of the data and the model.")
    ] = 0,
    nproc: Annotated[
        int, typer.Option(min=1, help="Train as N local torch.distributed processes (gloo).")
    ] = 1,
    force: ForceOpt = False,
) -> None:
    """Train a small segmentation net on synthetic imbalanced blobs with the demo objective,
    with bce alone, and with a scheduled, deep-supervised objective; report validation dice
    and IoU of each and plot the loss curves."""
    needs_matplotlib()  # before training, not after both runs
    output = writable(output, force, png=True)
    from .demo import run_demo

    run_demo(config=config, steps=steps, output=output, seed=seed, console=out, nproc=nproc)


@app.command("new-plugin")
def new_plugin(
    name: Annotated[str, typer.Argument(help="Distribution name, e.g. acme-losses.")],
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Where to create it (default: ./NAME).")
    ] = None,
) -> None:
    """Scaffold a company plugin package: pyproject entry point, a loss, its test."""
    import shlex

    from .scaffold import scaffold

    root = scaffold(name, directory)
    say(out, f"created plugin package in {root}")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        say(out, f"  {path.relative_to(root)}")
    say(
        out,
        f"next: pip install -e {shlex.quote(str(root))} "
        f"&& python -m pytest {shlex.quote(str(root / 'tests'))}",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lossreg`` console script; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # accepted anywhere on the line, not only before the command
        args = ["--debug"] + [a for a in args if a != "--debug"]
    try:
        result = app(args=args, prog_name="lossreg", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        return 130
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors
            exc.show()
            return int(exc.exit_code)
        if debug:
            raise
        report(exc)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
