"""Reading a loss config from a YAML file, safely: OmegaConf only, no YAML tags, nothing run.

The loss spec is under a top-level ``loss:`` key, or is the whole file. Node interpolations
(``${weights.dice}``) are resolved against the whole file first, so a config can keep its
weights in one place. Resolver calls (``${oc.env:TOKEN}``, or any resolver the process
registered) are refused unless ``allow_resolvers``: the command line runs no code a config
names, and never reads the environment on a config's behalf.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

from ..errors import ConfigFileError

__all__ = ["ConfigFileError", "load_spec"]

MAX_NESTING = 64  # YAML collections nested in one another; honest configs use a handful
MAX_BYTES = 16 * 2**20
_RESOLVER = re.compile(r"(?<!\\)\$\{\s*([^${}:\s]*)\s*:")


def load_spec(path: str | Path, *, allow_resolvers: bool = False) -> Any:
    """The resolved loss spec of a YAML config file, as plain Python containers.

    Refuses explicit YAML tags (``!!python/object/apply:...`` and the like) before any
    object is constructed: a config is data, and nothing it names is imported or run.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = Path(path)
    text = _read(path)
    _refuse_tags(text, path)
    try:
        cfg = OmegaConf.create(text)
    except OmegaConfBaseException as exc:
        raise ConfigFileError(f"{path}: not a valid config: {_one_line(exc)}") from exc
    except Exception as exc:  # yaml.YAMLError and friends: a syntax error in the file
        if "OMEGACONF_MAX_YAML_EXPANDED_NODES" in str(exc):  # OmegaConf >= 2.4's node cap
            raise ConfigFileError(
                f"{path}: the file has more YAML nodes than OmegaConf's limit (10,000 by "
                "default; it also stops alias bombs); the environment variable "
                "OMEGACONF_MAX_YAML_EXPANDED_NODES raises it",
                "for a big honest config (a long class-weight list): "
                "OMEGACONF_MAX_YAML_EXPANDED_NODES=100000 lossreg ...",
            ) from exc
        raise _yaml_error(path, exc) from exc
    if not allow_resolvers:
        _refuse_resolvers(OmegaConf.to_container(cfg, resolve=False), path)
    from .._build import plain_spec  # resolves, and takes the spec out of `loss:`

    return plain_spec(cfg)


def _read(path: Path) -> str:
    """The file's text; a clear error for stdin, a directory, a FIFO, non-UTF-8 bytes."""
    hint = "pass the path of a YAML file; examples to copy are in configs/"
    if str(path) == "-":
        raise ConfigFileError("reading a config from standard input is not supported", hint)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigFileError(f"config file not found: {path}", hint) from None
    except OSError as exc:
        raise ConfigFileError(f"cannot read config {path}: {exc.strerror}", hint) from exc
    if stat.S_ISDIR(mode):
        raise ConfigFileError(f"{path} is a directory, not a config file", hint)
    if not stat.S_ISREG(mode):  # a FIFO, /dev/stdin, a device: reading could block forever
        raise ConfigFileError(f"{path} is not a regular file (a pipe or a device)", hint)
    if path.stat().st_size > MAX_BYTES:
        raise ConfigFileError(f"{path} is larger than {MAX_BYTES // 2**20} MB", hint)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigFileError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
            "save the file as UTF-8",
        ) from None


def _refuse_tags(text: str, path: Path) -> None:
    """Refuse any YAML tag and nesting deeper than ``MAX_NESTING``, scanning with libyaml
    (a 64 KB file of nested brackets takes milliseconds, not the pure-Python scanner's 20 s)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    opening: tuple[type[yaml.Token], ...] = (
        yaml.FlowSequenceStartToken,
        yaml.FlowMappingStartToken,
        yaml.BlockSequenceStartToken,
        yaml.BlockMappingStartToken,
    )
    closing = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)
    depth = 0
    try:
        for token in yaml.scan(text, Loader=loader):
            if isinstance(token, opening):
                depth += 1
                if depth > MAX_NESTING:
                    line = token.start_mark.line + 1
                    raise ConfigFileError(
                        f"{path}, line {line}: nested deeper than {MAX_NESTING} levels",
                        "a loss config is a few levels deep; check the brackets",
                    )
            elif isinstance(token, closing):
                depth -= 1
            elif isinstance(token, yaml.TagToken):
                handle, suffix = token.value
                tag = _one_line(f"{handle or ''}{suffix}")[:80]
                line = token.start_mark.line + 1
                raise ConfigFileError(
                    f"{path}, line {line}: YAML tag {tag!r} is refused; a lossreg config is "
                    "plain data and nothing in it is constructed, imported or run",
                    "remove the tag; name a loss with `name: <registered loss>`",
                )
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from exc


def _refuse_resolvers(data: Any, path: Path, where: str = "") -> None:
    """Refuse ``${resolver:...}`` anywhere: name the resolver and the key, never the value."""
    if isinstance(data, dict):
        for key, value in data.items():
            _refuse_resolvers(value, path, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _refuse_resolvers(value, path, f"{where}[{i}]")
    elif isinstance(data, str):
        found = _RESOLVER.search(data)
        if found:
            name = _one_line(found.group(1))[:60]
            raise ConfigFileError(
                f"{path}: {_one_line(where)[:200]}: the interpolation calls the resolver "
                f"{name!r}; the command line resolves node interpolations (${{a.b}}) only",
                "pass --allow-resolvers to run resolvers (oc.env reads the environment)",
            )


def _yaml_error(path: Path, exc: BaseException) -> ConfigFileError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or _one_line(exc)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ConfigFileError(
        f"{path}{where}: not valid YAML: {_one_line(problem)[:200]}",
        "check the brackets, quotes and indentation just before that position",
    )


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
