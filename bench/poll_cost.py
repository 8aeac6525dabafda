"""Figure 7: cloud API calls of one poll cycle for 1, 100 and 1,000 active runs on AWS Batch,
counted by the AWS stand-in (moto's server) that the worker's own code talks to."""

from __future__ import annotations

import math
import os

from bench.results import Figure, Report
from bench.server import fresh_folder
from wes_gateway.domain import compute_envs, runs, tokens
from wes_gateway.domain.launch import RunRequest
from wes_gateway.infra import migrations
from wes_gateway.infra.config import Settings
from wes_gateway.infra.db import Database
from workers import execution


def calls_per_cycle(active_counts: list[int]) -> dict[int, dict[str, int]]:
    from tests.fakes.aws import AwsBatchFake  # the stand-in lives with the tests

    fake = AwsBatchFake()
    fake.start()
    saved = dict(os.environ)
    try:
        os.environ.update(fake.env())
        counted = {}
        for active in active_counts:
            fake.reset()
            counted[active] = _one_cycle(fake, active)
        return counted
    finally:
        os.environ.clear()
        os.environ.update(saved)
        fake.stop()


def _one_cycle(fake, active: int) -> dict[str, int]:
    folder = fresh_folder()
    settings = Settings(data_dir=folder / "data", public_url="http://gateway.example:8000")
    settings.ensure_data_dir()
    migrations.upgrade(settings.effective_database_url)
    db = Database(settings.effective_database_url)
    try:
        with db.session() as session:
            admin = tokens.ensure_user(session, "bench", admin=True)
            _, token = tokens.create_token(session, admin, description="bench")
        with db.session() as session:
            principal = tokens.authenticate(session, token)
            env = compute_envs.create(
                session,
                principal,
                {
                    "computeEnv": {
                        "name": "aws",
                        "platform": "aws-batch",
                        "config": {
                            "region": fake.region,
                            "headQueue": "head-queue",
                            "workDir": "s3://bucket/work",
                            "endpointUrl": fake.endpoint_url,
                        },
                    }
                },
            )
            request = RunRequest(
                workflow_type="NFL",
                workflow_type_version="DSL2",
                workflow_url="nf-core/demo",
                workflow_params={},
                tags={},
                workflow_engine_parameters={"compute_env_id": env.id},
            )
            run_ids = [
                runs.create_run(
                    session, principal, request, [], run_dir_of=settings.runs_dir.joinpath
                ).id
                for _ in range(active)
            ]
        executor = execution.Executor(db=db, settings=settings)
        for run_id in run_ids:
            execution.submit(executor, run_id)
        fake.calls.clear()
        polled = execution.poll_active(executor)
        assert polled == active, f"{polled} runs polled of {active}"
        return dict(fake.calls)
    finally:
        db.dispose()


def report(report: Report, active_counts: list[int]) -> None:
    counted = calls_per_cycle(active_counts)
    group = "Poll cost (AWS Batch stand-in)"
    for active, calls in counted.items():
        total = sum(calls.values())
        expected = math.ceil(active / 100)
        report.add(
            Figure(
                group,
                f"cloud API calls in one poll cycle, {active:,} active runs",
                "calls",
                total,
                None,
                f"⌈N/100⌉ = {expected}",
                total == expected,
                ", ".join(f"{name} {count}" for name, count in sorted(calls.items())),
            )
        )
