"""Small pieces of the study report's markdown: a table cell, a table, an order of names."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cell(value, digits: int = 3, sign: bool = False) -> str:
    """A number as a table cell: ``digits`` decimals for a float (with its sign always shown if ``sign``),
    "–" for None or a non-finite float."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence]) -> list:
    """A markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def rank(value, order: Sequence[str]) -> int:
    """Position of ``value`` in ``order``; unknown values after every known one."""
    return order.index(value) if value in order else len(order)
