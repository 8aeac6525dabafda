"""What Tower shows that Nextflow does not send, computed from task records the way
Nextflow's WorkflowStats and ReportSummary compute it; and the launch's own scripts in a
cloud head job's variables."""

from __future__ import annotations

import base64

import pytest

from wes_gateway.domain import head_job_env, run_stats

pytestmark = pytest.mark.backing_independent  # records in memory, no database


def _task(name, status, **data):
    return ("NFCORE:ALIGN" if name.startswith("ALIGN") else "QC", status, {"name": name, **data})


TASKS = [
    _task("ALIGN (1)", "COMPLETED", realtime=60_000, cpus=2, pcpu=150.0, peakRss=1000, rchar=10),
    _task("ALIGN (2)", "COMPLETED", realtime=120_000, cpus=2, pcpu=190.0, peakRss=3000, rchar=30),
    _task("ALIGN (3)", "COMPLETED", realtime=30_000, cpus=2, pcpu=50.0, peakRss=2000, rchar=20),
    _task("ALIGN (4)", "CACHED", realtime=90_000, cpus=2, pcpu=100.0, peakRss=4000, rchar=40),
    _task("QC (1)", "FAILED", realtime=10_000, cpus=1, errorAction="IGNORE"),
    _task("QC (2)", "RUNNING", cpus=1),
]


def test_stats_from_task_records_follow_nextflow():
    stats = run_stats.stats(None, run_stats.counted(TASKS))
    assert (stats["succeedCount"], stats["cachedCount"], stats["failedCount"]) == (3, 1, 1)
    assert stats["ignoredCount"] == 1
    assert [stats[k] for k in ("succeedCountFmt", "cachedCountFmt", "ignoredCountFmt")] == [
        "3",
        "1",
        "1",
    ]
    # Out of 5 ended tasks (an ignored failure is not an effective one).
    assert (stats["succeedPct"], stats["cachedPct"], stats["ignoredPct"]) == (60.0, 20.0, 20.0)
    assert stats["failedPct"] == 0.0
    # CPU time: realtime x cpus.
    assert stats["succeedDuration"] == (60_000 + 120_000 + 30_000) * 2
    assert stats["cachedDuration"] == 180_000 and stats["failedDuration"] == 10_000
    assert stats["computeTimeFmt"] == "0.2 (29.5% cached, 1.6% failed)"
    assert None not in stats.values()


def test_stats_of_a_run_without_tasks_are_zeros_not_nulls():
    stats = run_stats.stats(None, run_stats.counted([]))
    assert stats["succeedCountFmt"] == "0" and stats["succeedPct"] == 0.0
    assert stats["computeTimeFmt"] == "(a few seconds)"
    assert run_stats.compute_time(3_600_000 * 1234, 0, 0) == "1'234.0"


def test_nextflow_s_own_stats_win_and_gain_tower_s_fields():
    sent = {"succeedCount": 4, "succeedCountFmt": "4", "effectiveFailedPct": 0.0, "x": None}
    stats = run_stats.stats(sent, run_stats.counted(TASKS))
    assert stats["succeedCount"] == 4 and stats["failedPct"] == 0.0
    assert stats["cachedCountFmt"] == "0" and stats["succeedPct"] == 100.0
    assert "x" not in stats and stats["computeTimeFmt"] == "(a few seconds)"


def test_metrics_are_box_stats_per_process_from_the_task_records():
    (align,) = [m for m in run_stats.metrics(TASKS) if m["process"] == "ALIGN"]
    mem = align["mem"]
    # peakRss of the four ended ALIGN tasks: 1000, 2000, 3000, 4000 (R's summary).
    assert (mem["min"], mem["q1"], mem["q2"], mem["q3"], mem["max"]) == (
        1000,
        1750,
        2500,
        3250,
        4000,
    )
    assert mem["mean"] == 2500 and mem["minLabel"] == "ALIGN (1)"
    assert mem["maxLabel"] == "ALIGN (4)"
    assert align["cpuUsage"]["max"] == 95.0  # pcpu / cpus
    assert align["reads"]["max"] == 40 and "writes" not in align  # no wchar reported
    (qc,) = [m for m in run_stats.metrics(TASKS) if m["process"] == "QC"]
    assert set(qc) == {"process", "time"}  # the running task is not summarised


def test_a_launch_s_scripts_replace_the_environment_s_in_the_head_job():
    config = {"workDir": "s3://b/w", "preRunScript": "echo env-pre", "postRunScript": "echo p"}
    aws = {**config, "region": "eu-west-1", "headQueue": "q"}

    def variables(**run):
        env = head_job_env.environment(
            "aws-batch", aws, head_job_env.HeadJobRun(run_id="R" * 14, params={}, **run)
        )
        return {k: base64.b64decode(v).decode() for k, v in env.items() if k.endswith("RUN_BASE64")}

    assert variables() == {"NXF_PRERUN_BASE64": "echo env-pre", "NXF_POSTRUN_BASE64": "echo p"}
    assert variables(pre_run_script="echo mine") == {
        "NXF_PRERUN_BASE64": "echo mine",
        "NXF_POSTRUN_BASE64": "echo p",
    }
