"""Median, cell by cell, of several ``benchmarks/run.py`` tables (for docs/performance.md).

    python benchmarks/run.py > run1.md; python benchmarks/run.py > run2.md; ...
    python benchmarks/median.py run1.md run2.md run3.md

Rows are matched by their first two cells (row key, implementation). A numeric cell (``1.23x``,
``4.5``, ``45 / 40; raw 110``) becomes the median of that cell over the runs, followed by the
range ``[min-max]`` of its first number; other cells are taken from the first run.
"""

from __future__ import annotations

import re
import statistics
import sys

NUMBER = re.compile(r"\d+(?:\.\d+)?")


def rows(path: str) -> dict[tuple[str, str], list[str]]:
    out = {}
    with open(path) as f:
        for line in f:
            if not line.startswith("| ") or line.startswith("| row |"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out[(cells[0], cells[1])] = cells
    return out


def merge(values: list[str]) -> str:
    numbers = [[float(n) for n in NUMBER.findall(v)] for v in values]
    if not values[0] or not numbers[0] or any(len(n) != len(numbers[0]) for n in numbers):
        return values[0]
    medians = [statistics.median(col) for col in zip(*numbers, strict=True)]
    digits = [len(n.split(".")[1]) if "." in n else 0 for n in NUMBER.findall(values[0])]
    it = iter(zip(medians, digits, strict=True))
    text = NUMBER.sub(lambda m: (lambda v, d: f"{v:.{d}f}")(*next(it)), values[0])
    first = [n[0] for n in numbers]
    if len(values) > 1 and max(first) != min(first):
        d = digits[0]
        text += f" [{min(first):.{d}f}-{max(first):.{d}f}]"
    return text


def main(paths: list[str]) -> None:
    runs = [rows(p) for p in paths]
    print(
        "| row | implementation | ms | x baseline | x baseline, best | peak mem x logits "
        "| saved x logits |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, cells in runs[0].items():
        all_cells = [r[key] for r in runs if key in r]
        merged = [merge([c[i] for c in all_cells]) for i in range(2, len(cells))]
        print("| " + " | ".join([*cells[:2], *merged]) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
