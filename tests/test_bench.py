"""The benchmarks keep working: ``python -m bench --quick`` measures every figure, beside
sapporo, and writes the table (nothing here judges the speed). The pass that tests on
PostgreSQL measures the figures that read a database there (``--no-sqlite``: the
embedded pass has measured every figure on SQLite, and the others, accepting runs,
submit to RUNNING, poll cost and live updates, read no database of the suite's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_DATABASE_ENV

ROOT = Path(__file__).resolve().parent.parent
GROUPS = (
    "Listing runs",
    "Reading one run",
    "Tasks of one run",
    "Run count",
    "Memory",
    "Accepting runs",
    "Trace ingestion",
    "Submit to RUNNING",
    "Poll cost",
    "Live updates",
    "Memory growth",
)
# The figures that read a database, by their --only name, and the groups they make.
DATABASE_FIGURES = {
    "listing": ("Listing runs", "Reading one run at"),
    "tasks": ("Tasks of one run",),
    "count": ("Run count",),
    "trace": ("Trace ingestion",),
    "growth": ("Memory growth",),
}


def quick_benchmark(output: Path, *options: str) -> tuple[list[dict], str]:
    """``python -m bench --quick`` with ``options``: its figures and its Markdown table."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WES_GATEWAY_")}
    command = [sys.executable, "-m", "bench", "--quick", "--output", str(output), *options]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads((output / "benchmarks.json").read_text())["figures"]
    assert all(isinstance(f["ours"], int | float) for f in figures)
    return figures, (output / "benchmarks.md").read_text()


def assert_listing_beside_sapporo(figures: list[dict], kind: str) -> None:
    listing = [f for f in figures if f["group"] == f"Listing runs ({kind})"]
    assert listing and all(f["peer"] for f in listing if f["name"].startswith("GET"))


@pytest.mark.backing_independent  # SQLite of its own: the bench strips WES_GATEWAY_*
def test_quick_benchmark_measures_every_figure(tmp_path):
    figures, markdown = quick_benchmark(tmp_path)
    for group in GROUPS:
        assert any(f["group"].startswith(group) for f in figures), group
    assert_listing_beside_sapporo(figures, "SQLite")
    tasks = [f for f in figures if f["group"] == "Tasks of one run (SQLite)"]
    assert [f["name"] for f in tasks if f["unit"] == "×"] == [
        "describe: p50 at 300 ÷ at 100",
        "progress: p50 at 300 ÷ at 100",
        "tasks page (first): p50 at 300 ÷ at 100",
        "tasks page (last): p50 at 300 ÷ at 100",
        "tasks page sorted by start, from the end: p50 at 300 ÷ at 100",
        "tasks search status:FAILED: p50 at 300 ÷ at 100",
    ]
    polls = [f for f in figures if f["group"].startswith("Poll cost")]
    assert [f["ours"] for f in polls] == [1, 2]  # 1 and 120 active runs
    assert "## Targets" in markdown and "sapporo" in markdown


@pytest.mark.skipif(
    not os.environ.get(TEST_DATABASE_ENV),
    reason=f"runs in the pass that tests on PostgreSQL ({TEST_DATABASE_ENV} set)",
)
def test_quick_benchmark_measures_the_database_figures_on_postgresql(tmp_path):
    only = ",".join(DATABASE_FIGURES)
    postgres = os.environ[TEST_DATABASE_ENV]
    options = ("--postgres", postgres, "--no-sqlite", "--only", only)
    figures, markdown = quick_benchmark(tmp_path, *options)
    for groups in DATABASE_FIGURES.values():
        for group in groups:
            assert any(
                f["group"].startswith(group) and "(PostgreSQL" in f["group"] for f in figures
            ), group
    assert not [f for f in figures if "SQLite" in f["group"]]  # measured in the other pass
    assert_listing_beside_sapporo(figures, "PostgreSQL")
    assert "## Targets" in markdown and "sapporo" in markdown
