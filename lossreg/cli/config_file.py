"""Reading a loss config from a YAML file, safely: OmegaConf only, no YAML tags, nothing run.

The loss spec is under a top-level ``loss:`` key, or is the whole file. Interpolations
(``${weights.dice}``) are resolved against the whole file first, so a config can keep its
weights in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigFileError

__all__ = ["ConfigFileError", "load_spec"]


def load_spec(path: str | Path) -> Any:
    """The resolved loss spec of a YAML config file, as plain Python containers.

    Refuses explicit YAML tags (``!!python/object/apply:...`` and the like) before any
    object is constructed: a config is data, and nothing it names is imported or run.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = Path(path)
    if not path.is_file():
        raise ConfigFileError(
            f"config file not found: {path}",
            "pass the path of a YAML file; examples to copy are in configs/",
        )
    text = path.read_text(encoding="utf-8")
    _refuse_tags(text, path)
    try:
        cfg = OmegaConf.create(text)
    except OmegaConfBaseException as exc:
        raise ConfigFileError(f"{path}: not a valid config: {_one_line(exc)}") from exc
    except Exception as exc:  # yaml.YAMLError and friends: a syntax error in the file
        raise _yaml_error(path, exc) from exc
    from .._build import plain_spec  # resolves, and takes the spec out of `loss:`

    return plain_spec(cfg)


def _refuse_tags(text: str, path: Path) -> None:
    import yaml

    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.TagToken):
                handle, suffix = token.value
                tag = f"{handle or ''}{suffix}"
                line = token.start_mark.line + 1
                raise ConfigFileError(
                    f"{path}, line {line}: YAML tag {tag!r} is refused; a lossreg config is "
                    "plain data and nothing in it is constructed, imported or run",
                    "remove the tag; name a loss with `name: <registered loss>`",
                )
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from exc


def _yaml_error(path: Path, exc: BaseException) -> ConfigFileError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or _one_line(exc)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ConfigFileError(
        f"{path}{where}: not valid YAML: {problem}",
        "check the brackets, quotes and indentation just before that position",
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
