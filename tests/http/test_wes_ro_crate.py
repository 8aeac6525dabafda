"""GET /runs/{id}/ro-crate (an extension): the run as a Workflow Run RO-Crate, loaded back
with the ``rocrate`` library and checked for the profile's required entities."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime

from rocrate.rocrate import ROCrate
from sqlalchemy import update

from tests.conftest import WES, submit
from wes_gateway.domain.models import Run
from wes_gateway.domain.states import State

WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"


def _finished(db, run_id: str) -> None:
    with db.session() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(
                state=State.COMPLETE,
                start_time=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
                end_time=datetime(2026, 12, 4, 10, 5, tzinfo=UTC),
                outputs={"multiqc/report.html": {"location": "/data/out/report.html", "size": 10}},
            )
        )
        session.commit()


def _id(value):
    """An entity's id, whether rocrate resolved the reference to an entity or not."""
    if isinstance(value, str):
        return value
    return value.id if hasattr(value, "id") else value["@id"]


def test_a_run_loads_back_as_a_workflow_run_crate(client, alice, db, tmp_path):
    run_id = submit(
        client,
        alice,
        workflow_url="https://github.com/nf-core/rnaseq",
        workflow_params=json.dumps({"input": "s3://bucket/samples.csv", "max_cpus": 4}),
        workflow_engine="nextflow",
        workflow_engine_version="24.10.3",
        workflow_engine_parameters=json.dumps({"-r": "3.14.0"}),
    )
    _finished(db, run_id)
    response = client.get(f"{WES}/runs/{run_id}/ro-crate", headers=alice)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    (tmp_path / "crate.zip").write_bytes(response.content)
    crate = ROCrate(tmp_path / "crate.zip")

    conforms = {_id(entity) for entity in crate.root_dataset["conformsTo"]}
    assert WORKFLOW_RUN_CRATE in conforms
    workflow = crate.mainEntity
    assert workflow.id == "https://github.com/nf-core/rnaseq"
    assert "ComputationalWorkflow" in workflow.type
    assert workflow["version"] == "3.14.0"
    language = workflow["programmingLanguage"]
    assert "nextflow" in _id(language).lower() and language["version"] == "24.10.3"
    (action,) = [e for e in crate.get_entities() if e.type == "CreateAction"]
    assert _id(action["instrument"]) == workflow.id
    assert action["startTime"] == "2026-12-04T10:00:00Z"
    assert action["endTime"] == "2026-12-04T10:05:00Z"
    assert _id(action["actionStatus"]) == "http://schema.org/CompletedActionStatus"
    assert action["agent"]["name"] == "alice"
    params = {p["name"]: p["value"] for p in action["object"] if p.type == "PropertyValue"}
    assert params == {"input": "s3://bucket/samples.csv", "max_cpus": "4"}
    assert "s3://bucket/samples.csv" in {_id(e) for e in action["object"]}
    assert [_id(e) for e in action["result"]] == ["file:///data/out/report.html"]
    engines = [e for e in crate.get_entities() if e.type == "SoftwareApplication"]
    assert [(e["name"], e["version"]) for e in engines] == [("Nextflow", "24.10.3")]


def test_the_metadata_json_ld_on_accept_and_others_runs_are_not_found(client, alice, bob, db):
    run_id = submit(client, alice)
    _finished(db, run_id)
    response = client.get(
        f"{WES}/runs/{run_id}/ro-crate", headers={**alice, "Accept": "application/ld+json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    graph = {entity["@id"]: entity for entity in response.json()["@graph"]}
    assert graph["./"]["mainEntity"] == {"@id": "https://github.com/nf-core/demo"}
    assert client.get(f"{WES}/runs/{run_id}/ro-crate", headers=bob).status_code == 404
