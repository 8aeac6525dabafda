"""The figures of one benchmark run, and how they are printed and written."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Figure:
    group: str  # which of the measured things this belongs to
    name: str  # what was measured, with its conditions
    unit: str
    ours: float | None
    peer: float | None = None  # sapporo's figure, where one applies
    target: str = ""  # the target in words
    met: bool | None = None  # None: no target, or not measurable here
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.peer:
            return None
        return self.ours / self.peer


@dataclass
class Report:
    quick: bool
    figures: list[Figure] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # how each part measures, in prose
    analysis: str = ""  # what the figures say, written after a full run
    machine: dict[str, str] = field(default_factory=dict)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        print(_line(figure), flush=True)
        return figure

    def as_json(self) -> dict:
        return {
            "started": self.started,
            "quick": self.quick,
            "machine": self.machine,
            "figures": [asdict(f) | {"ratio": f.ratio} for f in self.figures],
            "methods": self.methods,
        }

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        as_json = folder / "benchmarks.json"
        as_json.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        as_markdown = folder / "benchmarks.md"
        as_markdown.write_text(markdown(self))
        return as_json, as_markdown


def describe_machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    postgres = _version(["psql", "--version"])
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres,
    }


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not installed"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _verdict(figure: Figure) -> str:
    return {True: "met", False: "MISSED", None: ""}[figure.met]


def _line(figure: Figure) -> str:
    ratio = f"  ratio {figure.ratio:.2f}" if figure.ratio is not None else ""
    peer = f"  sapporo {_number(figure.peer)}" if figure.peer is not None else ""
    target = f"  [{figure.target}: {_verdict(figure)}]" if figure.target else ""
    return f"{figure.name:<62} {_number(figure.ours):>9} {figure.unit:<10}{peer}{ratio}{target}"


def markdown(report: Report) -> str:
    lines = [
        "# Benchmarks",
        "",
        "wes-gateway measured beside [sapporo](https://github.com/sapporo-wes/sapporo-service)"
        " 2.4.0 on the same machine, in one run of `python -m bench`"
        + (
            " (quick mode: small sizes, few repetitions; not for comparison)."
            if report.quick
            else "."
        ),
        "Ratios are ours ÷ sapporo's (below 1 is better for times, above 1 for rates).",
        "",
        f"Measured {report.started}. Machine: "
        + ", ".join(f"{key} {value}" for key, value in report.machine.items())
        + ".",
        "",
    ]
    targets = [f for f in report.figures if f.target]
    lines += [
        "## Targets",
        "",
        "| figure | wes-gateway | sapporo | target | |",
        "|---|---:|---:|---|---|",
    ]
    for f in targets:
        peer = f"{_number(f.peer)} {f.unit}" if f.peer is not None else "–"
        lines.append(
            f"| {f.group}: {f.name} | {_number(f.ours)} {f.unit} | {peer} | {f.target} |"
            f" {_verdict(f)} |"
        )
    lines.append("")
    if report.analysis:
        lines += [report.analysis.strip(), ""]
    groups: dict[str, list[Figure]] = {}
    for figure in report.figures:
        groups.setdefault(figure.group, []).append(figure)
    for group, figures in groups.items():
        lines += [
            f"## {group}",
            "",
            "| figure | wes-gateway | sapporo | ratio | target | |",
            "|---|---:|---:|---:|---|---|",
        ]
        for f in figures:
            ratio = f"{f.ratio:.2f}" if f.ratio is not None else "–"
            peer = f"{_number(f.peer)} {f.unit}" if f.peer is not None else "–"
            lines.append(
                f"| {f.name} | {_number(f.ours)} {f.unit} | {peer} | {ratio} | {f.target} |"
                f" {_verdict(f)} |"
            )
        notes = [f"- {f.name}: {f.note}" for f in figures if f.note]
        lines += [""] + (notes + [""] if notes else [])
    if report.methods:
        lines += ["## How each figure is measured", ""]
        for method in report.methods:
            lines += [" ".join(method.split()), ""]
    lines += [
        "Run it again with `python -m bench` (add `--postgres URL` for the PostgreSQL rows);",
        "`python -m bench --quick` runs every figure at small sizes in seconds.",
        "",
    ]
    return "\n".join(lines)
