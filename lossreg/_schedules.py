"""Weight schedules: a named weight's value as a function of the objective's step counter.

A weight in a composite's ``weights:`` block is a number (a constant) or a mapping with a
``schedule`` key. Validation collects every problem with its config path; evaluation is plain
Python on an integer step, done when the counter moves (never inside ``forward``).

>>> s = parse_weight({"schedule": "linear", "start": 0.0, "end": 1.0, "steps": 10, "begin": 5})
>>> [s.value(t) for t in (0, 5, 10, 15, 99)]
[0.0, 0.0, 0.5, 1.0, 1.0]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, ConfigProblem

__all__ = ["SCHEDULES", "Schedule", "parse_weight", "validate_weight"]

# schedule -> (required fields, optional fields with defaults)
SCHEDULES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "linear": (("start", "end", "steps"), {"begin": 0}),
    "cosine": (("start", "end", "steps"), {"begin": 0}),
    "piecewise": (("points",), {}),
    "multistep": (("values", "milestones"), {}),
    "exponential": (("start", "gamma"), {"begin": 0, "min": None, "max": None}),
}


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: ``kind`` and its fields (defaults filled in)."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def value(self, t: int) -> float:
        """The weight at step ``t``."""
        return float(_VALUE[self.kind](self.fields, t))

    def horizon(self) -> int:
        """A step after which nothing changes any more (for plots); at least 1."""
        f = self.fields
        if self.kind in ("linear", "cosine"):
            end = f["begin"] + f["steps"]
        elif self.kind == "piecewise":
            end = f["points"][-1][0]
        elif self.kind == "multistep":
            end = f["milestones"][-1] if f["milestones"] else 0
        elif self.kind == "exponential":
            end = f["begin"] + (
                100 if f["gamma"] == 1 else math.log(0.01) / -abs(math.log(f["gamma"]))
            )
        else:
            end = 0
        return max(1, math.ceil(float(end)))

    def describe(self) -> str:
        """One line for ``lossreg check``."""
        f = self.fields
        if self.kind == "constant":
            return f"{f['value']:g} (constant)"
        if self.kind in ("linear", "cosine"):
            return (
                f"{self.kind} {f['start']:g} -> {f['end']:g} over {f['steps']} steps "
                f"from step {f['begin']}"
            )
        if self.kind == "piecewise":
            pts = ", ".join(f"({t:g}, {v:g})" for t, v in f["points"])
            return f"piecewise linear through {pts}"
        if self.kind == "multistep":
            parts = [f"{f['values'][0]:g}"]
            parts += [
                f"{v:g} from step {m}"
                for m, v in zip(f["milestones"], f["values"][1:], strict=True)
            ]
            return "multistep " + ", ".join(parts)
        clip = ""
        if f["min"] is not None or f["max"] is not None:
            clip = f", clipped to [{f['min']}, {f['max']}]"
        return f"exponential {f['start']:g} * {f['gamma']:g}^(t - {f['begin']}){clip}"


def _ramp(f: Mapping[str, Any], t: int) -> float:
    return min(1.0, max(0.0, float((t - f["begin"]) / f["steps"])))


def _linear(f: Mapping[str, Any], t: int) -> float:
    return float(f["start"] + (f["end"] - f["start"]) * _ramp(f, t))


def _cosine(f: Mapping[str, Any], t: int) -> float:
    return float(f["end"] + (f["start"] - f["end"]) * (1 + math.cos(math.pi * _ramp(f, t))) / 2)


def _piecewise(f: Mapping[str, Any], t: int) -> float:
    pts = f["points"]
    ts = [p[0] for p in pts]
    i = bisect.bisect_right(ts, t)
    if i == 0:
        return float(pts[0][1])
    if i == len(pts):
        return float(pts[-1][1])
    (t0, v0), (t1, v1) = pts[i - 1], pts[i]
    return float(v0 + (v1 - v0) * (t - t0) / (t1 - t0))


def _multistep(f: Mapping[str, Any], t: int) -> float:
    # from t == m_i on, the value is v_i (torch.optim.lr_scheduler.MultiStepLR's convention)
    return float(f["values"][bisect.bisect_right(f["milestones"], t)])


def _exponential(f: Mapping[str, Any], t: int) -> float:
    try:
        v = f["start"] * f["gamma"] ** max(0, t - f["begin"])
    except OverflowError:
        v = math.copysign(math.inf, f["start"])
    if f["min"] is not None:
        v = max(v, f["min"])
    if f["max"] is not None:
        v = min(v, f["max"])
    return float(v)


_VALUE: dict[str, Callable[[Mapping[str, Any], int], float]] = {
    "constant": lambda f, t: f["value"],
    "linear": _linear,
    "cosine": _cosine,
    "piecewise": _piecewise,
    "multistep": _multistep,
    "exponential": _exponential,
}


# -- validation ----------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_step(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_weight(spec: Any, path: str) -> tuple[Schedule | None, list[ConfigProblem]]:
    """A weight's spec (number or schedule mapping) as a :class:`Schedule`, or its problems."""
    if _is_number(spec):
        return Schedule("constant", {"value": float(spec)}), []
    if not isinstance(spec, Mapping):
        msg = "a weight is a finite number or a mapping with `schedule`, e.g. {schedule: linear}"
        return None, [ConfigProblem(path, msg, value=spec)]
    kind = spec.get("schedule")
    if kind not in SCHEDULES or kind == "constant":
        known = ", ".join(k for k in SCHEDULES if k != "constant")
        where = f"{path}.schedule"
        if "schedule" not in spec:
            return None, [ConfigProblem(where, f"missing; one of: {known}")]
        return None, [
            ConfigProblem(where, f"unknown schedule; expected one of: {known}", value=kind)
        ]
    required, optional = SCHEDULES[kind]
    problems = [
        ConfigProblem(f"{path}.{k}", f"unknown field of a {kind} schedule; fields are: "
                      + ", ".join((*required, *optional)), value=spec[k])
        for k in spec
        if k != "schedule" and k not in required and k not in optional
    ]  # fmt: skip
    problems += [
        ConfigProblem(f"{path}.{k}", f"required field of a {kind} schedule is missing")
        for k in required
        if k not in spec
    ]
    if problems:
        return None, problems
    fields = {**optional, **{k: v for k, v in spec.items() if k != "schedule"}}
    problems = _CHECK[kind](fields, path)
    if problems:
        return None, problems
    if kind == "piecewise":
        fields["points"] = [[p[0], p[1]] for p in fields["points"]]
    return Schedule(kind, fields), []


def parse_weight(spec: Any, path: str = "weight") -> Schedule:
    """:func:`validate_weight`, raising :class:`ConfigError` on a problem."""
    schedule, problems = validate_weight(spec, path)
    if problems:
        raise ConfigError(problems)
    assert schedule is not None
    return schedule


def _numbers(fields: Mapping[str, Any], path: str, *keys: str) -> list[ConfigProblem]:
    return [
        ConfigProblem(f"{path}.{k}", "must be a finite number", value=fields[k])
        for k in keys
        if fields.get(k) is not None and not _is_number(fields[k])
    ]


def _check_ramp(f: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    out = _numbers(f, path, "start", "end")
    if not (isinstance(f["steps"], int) and not isinstance(f["steps"], bool) and f["steps"] > 0):
        out.append(ConfigProblem(f"{path}.steps", "must be an integer > 0", value=f["steps"]))
    if not _is_step(f["begin"]):
        out.append(ConfigProblem(f"{path}.begin", "must be an integer >= 0", value=f["begin"]))
    return out


def _check_piecewise(f: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    pts = f["points"]
    shape_ok = isinstance(pts, (list, tuple)) and len(pts) > 0
    shape_ok = shape_ok and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(x) for x in p) for p in pts
    )
    if not shape_ok:
        msg = "must be a non-empty list of [step, value] pairs of finite numbers"
        return [ConfigProblem(f"{path}.points", msg, value=pts)]
    for i in range(1, len(pts)):
        if not pts[i][0] > pts[i - 1][0]:
            msg = f"steps must increase; {pts[i][0]} follows {pts[i - 1][0]}"
            return [ConfigProblem(f"{path}.points.{i}", msg, value=list(pts[i]))]
    return []


def _check_multistep(f: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    values, milestones = f["values"], f["milestones"]
    out = []
    if not (isinstance(values, (list, tuple)) and values and all(_is_number(v) for v in values)):
        out.append(
            ConfigProblem(
                f"{path}.values", "must be a non-empty list of finite numbers", value=values
            )
        )
    if not (isinstance(milestones, (list, tuple)) and all(_is_step(m) for m in milestones)):
        out.append(
            ConfigProblem(f"{path}.milestones", "must be a list of integers >= 0", value=milestones)
        )
    if out:
        return out
    for i in range(1, len(milestones)):
        if not milestones[i] > milestones[i - 1]:
            msg = f"milestones must increase; {milestones[i]} follows {milestones[i - 1]}"
            out.append(ConfigProblem(f"{path}.milestones.{i}", msg, value=milestones[i]))
            break
    if len(values) != len(milestones) + 1:
        msg = (
            f"needs one value more than milestones (the value before the first milestone): "
            f"{len(milestones)} milestones, {len(values)} values"
        )
        out.append(ConfigProblem(f"{path}.values", msg, value=values))
    return out


def _check_exponential(f: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    out = _numbers(f, path, "start", "gamma", "min", "max")
    if not _is_step(f["begin"]):
        out.append(ConfigProblem(f"{path}.begin", "must be an integer >= 0", value=f["begin"]))
    if not out and f["gamma"] <= 0:
        out.append(ConfigProblem(f"{path}.gamma", "must be > 0", value=f["gamma"]))
    lo, hi = f["min"], f["max"]
    if not out and lo is not None and hi is not None and lo > hi:
        out.append(ConfigProblem(f"{path}.min", f"must not exceed max ({hi})", value=lo))
    return out


_CHECK: dict[str, Callable[[Mapping[str, Any], str], list[ConfigProblem]]] = {
    "linear": _check_ramp,
    "cosine": _check_ramp,
    "piecewise": _check_piecewise,
    "multistep": _check_multistep,
    "exponential": _check_exponential,
}
