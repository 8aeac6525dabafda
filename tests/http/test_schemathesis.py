"""Schemathesis against a running server, on the suite's database: once driven by the
official WES 1.1 spec (tests/oracle/), once by our Tower spec (specs/tower.openapi.yaml).
Each run has every phase (examples, coverage, fuzzing, stateful) and every check (but
max_response_time, which takes a limit), must generate at least MIN_REQUESTS requests,
and must end with zero failures.

A check is switched off, or told that a 400 is an acceptable answer, only for the
operations that need it; CONFIG and TOWER_CONFIG say which, each with its reason:

- WES: positive_data_acceptance takes a 400 from RunWorkflow (a run must name an NFL
  workflow) and from ListRuns and ListTasks (a page_size below 1, or a page_token this
  service did not issue); status_code_conformance is off for ListTasks, whose 400 the
  official spec does not document.
- Tower: positive_data_acceptance takes a 400 from the operations whose `search` or
  `status` filters have a syntax no schema spells out (ListWorkflows,
  ListWorkflowsLegacy, ListWorkflowTasks, ListComputeEnvs), whose bodies are checked
  past their schema (CreateWorkflowLaunch, CreateComputeEnv), and whose answer depends on
  the run's state (CancelWorkflow on an ended run, CreateTrace naming an unknown launch);
  negative_data_rejection is off for the trace endpoints (/trace/...), which read
  leniently on purpose, and, in the coverage phase only, for the two task-by-id
  operations, whose taskId is pinned to a real task; allow_header_conformance is off for
  /workflow/launch, /workflow/delete, /pipelines/info and /pipelines/validate, whose paths
  /workflow/{workflowId} and /pipelines/{pipelineId} also match (and the two /validate
  paths of credentials and pipeline secrets, likewise); the launchpad and labels
  operations take a 400 for names, launches and ids their schemas allow but the service
  refuses; the tenancy operations (/orgs..., /user/...) take a 400 for bodies and ids
  their schemas allow but the service refuses (names, roles, unknown members), and so do
  the credentials and pipeline secrets (names, a provider's keys).
- Both: generated strings hold no NUL character, which the service refuses in every URL
  and body (no database stores one).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WES, add_tasks
from tests.live import cli_env, run_cli, serve, submit_over_http
from tests.oracle import OFFICIAL_SPEC

MIN_REQUESTS = 1000

# What positive_data_acceptance expects of a schema-valid request, plus 400.
ACCEPTED_OR_400 = '["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]'

CONFIG = """
[checks]
enabled = true

[generation]
# Every URL and body holding a NUL character is a 400: no database stores one.
allow-x00 = false

[parameters]
"path.run_id" = "{run_id}"
"path.task_id" = "2"

# A run must name an NFL workflow (and its workflow_params must be JSON); the official
# schema allows any strings, so most generated bodies are a 400.
[[operations]]
include-operation-id = "RunWorkflow"
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# A page_size below 1, or a page_token this service did not issue, is a 400; the
# official schema bounds neither.
[[operations]]
include-operation-id = ["ListRuns", "ListTasks"]
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# That 400 is documented by the official spec for ListRuns, not for ListTasks.
[[operations]]
include-operation-id = "ListTasks"
checks.status_code_conformance.enabled = false
""".replace("ACCEPTED_OR_400", ACCEPTED_OR_400)


@pytest.mark.slow
def test_official_spec_fuzzing_finds_nothing(tmp_path, db, database_url):
    """On the suite's database (SQLite, or PostgreSQL when configured)."""
    env = cli_env(tmp_path / "data", database_url)
    token = run_cli(env, "token", "create", "fuzzer", "--admin").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    with serve(env) as (base, _process):
        run_id = submit_over_http(base, headers)
        add_tasks(db, run_id, 3)
        config = tmp_path / "schemathesis.toml"
        config.write_text(CONFIG.replace("{run_id}", run_id))
        _fuzz(config, OFFICIAL_SPEC, f"{base}{WES}", token, "--max-examples", "130")


def _fuzz(config: Path, spec: Path, url: str, token: str, *extra: str) -> None:
    """Run Schemathesis against a live server and require zero failures over at least
    MIN_REQUESTS generated requests."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            "run",
            str(spec),
            "--url",
            url,
            "-H",
            f"Authorization: Bearer {token}",
            # One worker: with two, the coverage phase's threads build Hypothesis
            # strategies at once and crash it (a race in Python 3.11's ast module, which
            # Hypothesis uses to describe filters). Nor is it slower: the server shares
            # the machine.
            "--workers",
            "1",
            "--seed",
            "1",
            "--request-timeout",
            "10",
            *extra,
        ],
        capture_output=True,
        text=True,
        # The Tower spec's launchpad and labels operations made its pass longer; on a
        # machine shared with other work 300 s was not always enough.
        timeout=600,
    )
    summary = [line for line in result.stdout.splitlines() if "generated" in line]
    print("\n".join(summary))
    assert result.returncode == 0, result.stdout[-6000:]
    assert summary and "passed" in summary[-1]
    generated = int(re.search(r"(\d+) generated", summary[-1]).group(1))
    assert generated >= MIN_REQUESTS, summary[-1]


TOWER_CONFIG = """
[checks]
enabled = true

[generation]
# Every URL and body holding a NUL character is a 400: no database stores one.
allow-x00 = false

[parameters]
"path.workflowId" = "{run_id}"
"path.taskId" = "1"

# `search` (keyword:value filters, dates) and ListComputeEnvs' `status` (a comma-separated
# list of statuses) have a syntax no schema spells out; what they cannot read is a 400.
[[operations]]
include-operation-id = [
    "ListWorkflows", "ListWorkflowsLegacy", "ListWorkflowTasks", "ListComputeEnvs"
]
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# Bodies checked past their schema: a launch must name a pipeline it can fetch, a compute
# environment a valid name and a config its platform accepts.
[[operations]]
include-operation-id = ["CreateWorkflowLaunch", "CreateComputeEnv"]
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# Answers that depend on state, as in Seqera's API: cancelling a run that has ended, or
# tracing a launch id that names no run, is a 400.
[[operations]]
include-operation-id = ["CancelWorkflow", "CreateTrace"]
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# Tenancy: Seqera's request schemas require nothing, but a name must follow Seqera's
# rule, a role be one of the roles and a member, participant or user exist; what does
# not is a 400 naming the field. A workspace or organization holding runs is not deleted
# (a 400).
[[operations]]
include-path-regex = "^/(orgs|user/)"
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# Credentials and pipeline secrets: a name must follow Seqera's rule and be free (a name
# taken is a 400, as on Seqera), and a provider's keys are checked past their schema.
[[operations]]
include-path-regex = "^/(credentials|pipeline-secrets)"
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# Launchpad and labels: names and values follow Seqera's rules, a saved launch is checked
# as a launch is, `visibility` and `attributes` take a few words, the repository info
# needs a pipeline name or git URL, and label and run ids must be the workspace's; what
# is not is a 400 naming the field.
[[operations]]
include-path-regex = "^/(pipelines|labels|workflow/labels/)"
checks.positive_data_acceptance.expected-statuses = ACCEPTED_OR_400

# The trace endpoints read leniently on purpose: Nextflow sends nulls and fields the
# published schemas do not list, and refusing them would abort its pipelines.
[[operations]]
include-path-regex = "^/trace/"
checks.negative_data_rejection.enabled = false

# The coverage phase sends its out-of-range taskId as the pinned "1" (a real task, a
# 200) and still counts the request as invalid.
[[operations]]
include-operation-id = ["DescribeWorkflowTask", "DescribeWorkflowTaskLegacy"]
phases.coverage.checks.negative_data_rejection.enabled = false

# Revoking all the caller's tokens would revoke the fuzzer's own: every later call would
# be a 401. tests/http/test_tower_tokens.py covers it.
[[operations]]
include-operation-id = "DeleteAllTokens"
enabled = false

# /workflow/{workflowId} (GET, DELETE) and /pipelines/{pipelineId} (GET, PUT, DELETE)
# match these paths too, so their Allow lists those methods beside their own.
[[operations]]
include-path-regex = "^/(workflow/(launch|delete)|pipelines/(info|validate))$"
checks.allow_header_conformance.enabled = false

# So does /{credentials,pipeline-secrets}/{id} (GET, PUT, DELETE) for these.
[[operations]]
include-path-regex = "^/(credentials|pipeline-secrets)/validate$"
checks.allow_header_conformance.enabled = false
""".replace("ACCEPTED_OR_400", ACCEPTED_OR_400)


@pytest.mark.slow
def test_our_tower_spec_fuzzing_finds_nothing(tmp_path, db, database_url):
    # An event stream ends soon after its first events, so each fuzzed one is answered.
    env = cli_env(tmp_path / "data", database_url, WES_GATEWAY_EVENTS_STREAM_SECONDS="0.2")
    token = run_cli(env, "token", "create", "fuzzer", "--admin").stdout.strip()
    with serve(env) as (base, _process):
        run_id = submit_over_http(base, {"Authorization": f"Bearer {token}"})
        add_tasks(db, run_id, 3)
        config = tmp_path / "schemathesis.toml"
        config.write_text(TOWER_CONFIG.replace("{run_id}", run_id))
        spec = Path(__file__).resolve().parent.parent.parent / "specs" / "tower.openapi.yaml"
        _fuzz(config, spec, f"{base}/api", token, "--max-examples", "35")
