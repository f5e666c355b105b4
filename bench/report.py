"""Benchmark results: printed tables and docs/performance.md."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Row:
    metric: str
    value: float | str
    target: str = ""
    ok: bool | None = None
    unit: str = ""

    def cells(self) -> list[str]:
        value = f"{self.value:.3f}" if isinstance(self.value, float) else str(self.value)
        verdict = "" if self.ok is None else ("✅" if self.ok else "❌")
        return [self.metric, f"{value} {self.unit}".strip(), self.target, verdict]


@dataclass
class Result:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self, metric: str, value: float | str, target: str = "", ok: bool | None = None, unit: str = ""
    ) -> None:
        self.rows.append(Row(metric, value, target, ok, unit))

    @property
    def passed(self) -> bool:
        return all(row.ok is not False for row in self.rows)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| metric | measured | target | |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(row.cells()) + " |" for row in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def text(self) -> str:
        table = [["metric", "measured", "target", ""]] + [row.cells() for row in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        out = [self.title, "-" * len(self.title)]
        out += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)) for r in table]
        out += [f"  note: {note}" for note in self.notes]
        return "\n".join(out) + "\n"
