"""End to end on the suite's real Slurm cluster: `wes-gateway serve` with its own worker
and scheduler, a Slurm compute environment made through the API and checked by the
worker over SSH, a WES run that reports to the gateway from its Slurm job (-with-tower),
and a Tower launch cancelled (its job leaves the queue)."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.live import STANDIN, Client, admin_token, execution_env, free_port, serve, until

pytestmark = [pytest.mark.slow, pytest.mark.backing_independent]  # SQLite, the embedded broker


def test_runs_on_slurm_through_wes_and_tower(tmp_path, slurm):
    port = free_port()
    env = execution_env(
        tmp_path / "data",
        WES_GATEWAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        WES_GATEWAY_SSH_KNOWN_HOSTS=str(slurm.known_hosts),
    )
    with serve(env, port=port, kill_at_end=True) as (base, process):
        client = Client(base, admin_token(process))
        spec = {
            "name": "cluster",
            "platform": "slurm-platform",
            "config": {
                "hostName": "127.0.0.1",
                "port": slurm.ssh_port,
                "userName": "root",
                "workDir": str(tmp_path / "cluster" / "work"),
                "headQueue": "head",
                "computeQueue": "work",
                "sshKeyFile": str(slurm.key_file),
                "environment": [
                    {"name": "PATH", "value": f"{STANDIN.parent}:{os.environ['PATH']}"}
                ],
            },
        }
        created = httpx.post(
            f"{base}/api/compute-envs", headers=client.headers, json={"computeEnv": spec}
        )
        assert created.status_code == 200, created.text
        env_id = created.json()["computeEnvId"]
        url = f"{base}/api/compute-envs/{env_id}"

        def status() -> str:
            return httpx.get(url, headers=client.headers).json()["computeEnv"]["status"]

        until(lambda: status() == "AVAILABLE", "the worker's check of the cluster")

        run_id = client.submit(
            engine_parameters={"compute_env_id": env_id},
            standin_tasks=2,
            standin_task_seconds=0.2,
        )
        seen = client.wait(run_id, timeout=60)
        assert seen[-1] == "COMPLETE", seen
        # (the run may end by its trace a moment before its job leaves the node)
        until(lambda: slurm.jobs(name=f"nf-{run_id}")[0]["state"] == "COMPLETED", "the job's end")
        # The head job reported to the gateway from the cluster: its tasks are known.
        tasks = client.get(f"/runs/{run_id}/tasks").json()["task_logs"]
        assert len(tasks) == 2
        # The console is copied from the job's output file by the worker (at the job's end
        # at the latest), not read by the API: it shows once that copy is made.
        until(
            lambda: "N E X T F L O W" in client.get(f"/runs/{run_id}/stdout").text,
            "the console copied from the cluster",
        )

        launch = httpx.post(
            f"{base}/api/workflow/launch",
            headers=client.headers,
            json={
                "launch": {
                    "pipeline": "nf-core/demo",
                    "computeEnvId": env_id,
                    "paramsText": '{"standin_hang": "true"}',
                }
            },
        )
        assert launch.status_code == 200, launch.text
        launched = launch.json()["workflowId"]
        assert client.wait(launched, {"RUNNING"}, timeout=30)[-1] == "RUNNING"
        cancel = httpx.post(f"{base}/api/workflow/{launched}/cancel", headers=client.headers)
        assert cancel.status_code == 204
        assert client.wait(launched, timeout=30)[-1] == "CANCELED"
        # (the run is CANCELED once Nextflow stops; Slurm marks the job when it has gone)
        until(lambda: slurm.jobs(name=f"nf-{launched}")[0]["state"] == "CANCELLED", "the job's end")
        assert len(slurm.jobs(name=f"nf-{launched}")) == 1
        workflow = httpx.get(f"{base}/api/workflow/{launched}", headers=client.headers).json()
        assert workflow["workflow"]["status"] == "CANCELLED"
