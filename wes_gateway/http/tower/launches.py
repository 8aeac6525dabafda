"""Launch records: ``GET /launch/{launchId}``, the launch a run was started from. A
launched run's ``launchId`` is its own id, so its launch is found through the run (and
seen by whoever may see the run)."""

from __future__ import annotations

from wes_gateway.domain import compute_envs, runs
from wes_gateway.domain.errors import NotFound
from wes_gateway.http.runtime import request_session
from wes_gateway.http.tower import views
from wes_gateway.http.tower.acting import acting
from wes_gateway.http.tower.handlers import local_work_dir


def describe_launch(launch_id: str, token_info: dict, workspace_id: int | None = None):
    who = acting(token_info, workspace_id, "DescribeLaunch")
    session = request_session()
    try:
        run = runs.get_run(session, who, launch_id)
    except NotFound:
        raise NotFound(f"launch {launch_id!r} not found") from None
    if run.source == "trace":  # a run reported by `nextflow run -with-tower` has none
        raise NotFound(f"launch {launch_id!r} not found")
    env = compute_envs.of_run(session, run)
    record = views.launch_entity(run, env, admin=who.acts_as_admin, local_work_dir=local_work_dir())
    return {"launch": record}
