"""What Tower shows of a run that Nextflow does not send: the workflow ``stats`` (counts,
their formatted text, percentages, CPU time) and the per-process ``metrics`` box plots.
Nextflow sends both when a run completes; until then, and for a run that never completed
(cancelled, lost), they are made here by the rules Nextflow's own ``WorkflowStats`` and
``ReportSummary`` follow: the stats from the run's counts (kept in ``task_loads`` as its
task records are written, so a describe reads one row), the box plots from the records.

Task records are ``(process, status, data)`` triples, ``data`` holding the trace fields
(``realtime``, ``cpus``, ``pcpu``, ``peakRss``, ...) as the trace calls stored them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

TaskRecord = tuple[str | None, str | None, Mapping[str, Any]]

# Below this many seconds of CPU time Nextflow writes "(a few seconds)".
_MIN_SECONDS = 180
_COUNT_KEYS = ("succeedCount", "cachedCount", "failedCount", "ignoredCount")
_DURATION_KEYS = ("succeedDuration", "cachedDuration", "failedDuration")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return value if math.isfinite(value) else 0


def cpu_millis(data: Mapping[str, Any]) -> int:
    """CPU time of a task as Nextflow counts it: realtime × cpus (1 when unknown)."""
    return max(int(_number(data.get("realtime")) * (int(_number(data.get("cpus"))) or 1)), 0)


def error_action(data: Mapping[str, Any]) -> str:
    """What Nextflow did about a failed task: ``IGNORE``, ``RETRY``, ``TERMINATE``, ..."""
    return str(data.get("errorAction") or "").upper()


def _grouped(value: int) -> str:
    """Nextflow's integer format: thousands grouped with an apostrophe (1'234)."""
    return f"{value:,}".replace(",", "'")


def _percent(part: int, total: int) -> float:
    return round(part / total * 100, 2) if total else 0.0


def compute_time(succeed: int, cached: int, failed: int) -> str:
    """Nextflow's ``computeTimeFmt``: CPU hours, with the cached and failed shares."""
    total = max(succeed + cached + failed, 0) / 1000
    if total < _MIN_SECONDS:
        return "(a few seconds)"
    text = f"{total / 3600:,.1f}".replace(",", "'")
    shares = []
    if cached:
        shares.append(f"{_share(cached, total)}% cached")
    if failed:
        shares.append(f"{_share(failed, total)}% failed")
    return f"{text} ({', '.join(shares)})" if shares else text


def _share(millis: int, total_seconds: float) -> str:
    value = round(millis / 10 / total_seconds, 1)
    return str(int(value)) if value == int(value) else str(value)


# The counts the stats are made of: Nextflow's counters of finished tasks and their CPU
# time by status (``task_loads`` keeps the same, under the same names, for a whole run).
COUNTS = (
    "succeeded",
    "cached",
    "failed",
    "ignored",
    "retries",
    "aborted",
    "succeed_millis",
    "cached_millis",
    "failed_millis",
)


def counted(tasks: Iterable[TaskRecord]) -> dict[str, int]:
    """The counts of a run's task records."""
    counts = dict.fromkeys(COUNTS, 0)
    for _, status, data in tasks:
        if status == "COMPLETED":
            counts["succeeded"] += 1
            counts["succeed_millis"] += cpu_millis(data)
        elif status == "CACHED":
            counts["cached"] += 1
            counts["cached_millis"] += cpu_millis(data)
        elif status == "FAILED":
            counts["failed"] += 1
            counts["failed_millis"] += cpu_millis(data)
            action = error_action(data)
            if action == "IGNORE":
                counts["ignored"] += 1
            elif action == "RETRY":
                counts["retries"] += 1
        elif status == "ABORTED":
            counts["aborted"] += 1
    return counts


def stats(reported: Mapping[str, Any] | None, counts: Mapping[str, int]) -> dict[str, Any]:
    """Seqera's ``WfStats`` for a run: what Nextflow reported when it completed, with the
    fields it left out filled in; from the run's ``counts`` (``counted`` or its kept
    ``task_loads`` row) while it has reported none. Every field is a number or a string,
    never null (Seqera's schema allows no null)."""
    if reported:
        return _completed(reported)
    counts = {key: int(counts.get(key) or 0) for key in COUNTS}
    effective_failed = max(counts["failed"] - counts["ignored"] - counts["retries"], 0)
    total = (
        counts["succeeded"]
        + counts["cached"]
        + counts["ignored"]
        + effective_failed
        + counts["aborted"]
    )
    return {
        "succeedCount": counts["succeeded"],
        "cachedCount": counts["cached"],
        "failedCount": counts["failed"],
        "ignoredCount": counts["ignored"],
        "succeedCountFmt": _grouped(counts["succeeded"]),
        "cachedCountFmt": _grouped(counts["cached"]),
        "failedCountFmt": _grouped(counts["failed"]),
        "ignoredCountFmt": _grouped(counts["ignored"]),
        "succeedPct": _percent(counts["succeeded"], total),
        "cachedPct": _percent(counts["cached"], total),
        "failedPct": _percent(effective_failed, total),
        "ignoredPct": _percent(counts["ignored"], total),
        "succeedDuration": counts["succeed_millis"],
        "cachedDuration": counts["cached_millis"],
        "failedDuration": counts["failed_millis"],
        "computeTimeFmt": compute_time(
            counts["succeed_millis"], counts["cached_millis"], counts["failed_millis"]
        ),
    }


def _completed(reported: Mapping[str, Any]) -> dict[str, Any]:
    """Nextflow's own stats, its nulls dropped and Tower's derived fields added where
    it sent none (``failedPct`` is Tower's; Nextflow sends ``effectiveFailedPct``)."""
    out = {key: value for key, value in reported.items() if value is not None}
    counts = {key: int(_number(out.get(key))) for key in _COUNT_KEYS}
    for key in _COUNT_KEYS:
        out.setdefault(key, counts[key])
        out.setdefault(key + "Fmt", _grouped(counts[key]))
    for key in _DURATION_KEYS:
        out[key] = int(_number(out.get(key)))
    effective_failed = int(
        _number(out.get("effectiveFailedCount", counts["failedCount"] - counts["ignoredCount"]))
    )
    total = (
        counts["succeedCount"] + counts["cachedCount"] + counts["ignoredCount"] + effective_failed
    )
    out.setdefault("succeedPct", _percent(counts["succeedCount"], total))
    out.setdefault("cachedPct", _percent(counts["cachedCount"], total))
    out.setdefault("ignoredPct", _percent(counts["ignoredCount"], total))
    out.setdefault("failedPct", out.get("effectiveFailedPct", _percent(effective_failed, total)))
    out.setdefault(
        "computeTimeFmt",
        compute_time(out["succeedDuration"], out["cachedDuration"], out["failedDuration"]),
    )
    return out


# Each metric series: how a task record gives its value (None: the task has none).
def _field(name: str):
    def value(data: Mapping[str, Any]) -> float | None:
        raw = data.get(name)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            return None
        return float(raw)

    return value


def _ratio(part: str, whole: str, scale: float = 100.0):
    def value(data: Mapping[str, Any]) -> float | None:
        numerator, denominator = _number(data.get(part)), _number(data.get(whole))
        return numerator / denominator * scale if numerator and denominator else None

    return value


def _cpu_usage(data: Mapping[str, Any]) -> float | None:
    pcpu = _number(data.get("pcpu"))
    return pcpu / (int(_number(data.get("cpus"))) or 1) if pcpu else None


SERIES = {
    "cpu": _field("pcpu"),
    "mem": _field("peakRss"),
    "vmem": _field("peakVmem"),
    "time": _field("realtime"),
    "reads": _field("rchar"),
    "writes": _field("wchar"),
    "cpuUsage": _cpu_usage,
    "memUsage": _ratio("peakRss", "memory"),
    "timeUsage": _ratio("realtime", "time"),
}
# The tasks a summary counts: those that ran to an end (Nextflow aggregates a task when it
# completes, fails or is found cached).
_SUMMARISED = ("COMPLETED", "FAILED", "CACHED")


def _quantile(values: list[tuple[float, str]], q: int) -> tuple[float, str]:
    """The q-th quantile as R's ``summary`` (and Nextflow's report) computes it, with the
    name of the task at its lower index."""
    position = (len(values) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    value = values[low][0] + (position - low) * (values[high][0] - values[low][0])
    return value, values[low][1]


def box(values: list[tuple[float, str]]) -> dict[str, Any] | None:
    """One series' box stats; None when there is no value, or every value is 0."""
    if not values:
        return None
    ordered = sorted(values, key=lambda item: item[0])
    result: dict[str, Any] = {"mean": round(sum(v for v, _ in ordered) / len(ordered), 2)}
    labels: dict[str, Any] = {}
    for key, q in (("min", 0), ("q1", 25), ("q2", 50), ("q3", 75), ("max", 100)):
        value, label = _quantile(ordered, q)
        result[key] = round(value, 2)
        labels[f"{key}Label"] = label
    if result["min"] == 0 and result["max"] == 0:
        return None
    return {**result, **labels, "warnings": []}


def metrics(tasks: list[TaskRecord]) -> list[dict[str, Any]]:
    """Seqera's ``WorkflowMetrics`` per process (its simple name, after the last ``:``),
    from the task records: the series a process has no data for are left out."""
    by_process: dict[str, list[Mapping[str, Any]]] = {}
    for process, status, data in tasks:
        if status in _SUMMARISED and process:
            by_process.setdefault(process.rsplit(":", 1)[-1], []).append(data)
    entries = []
    for process, records in by_process.items():
        entry: dict[str, Any] = {"process": process}
        for key, value_of in SERIES.items():
            values = [
                (value, str(data.get("name") or ""))
                for data in records
                if (value := value_of(data)) is not None
            ]
            summary = box(values)
            if summary is not None:
                entry[key] = summary
        if len(entry) > 1:
            entries.append(entry)
    return entries


def manifest(reported: Any) -> dict[str, Any] | None:
    """The pipeline manifest Nextflow reported, without the fields it left null (Seqera's
    ``WfManifest`` types each one as a string)."""
    if not isinstance(reported, Mapping):
        return None
    return {key: value for key, value in reported.items() if value is not None}
