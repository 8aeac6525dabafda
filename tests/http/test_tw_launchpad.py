"""The launchpad and labels commands of tw (seqeralabs/tower-cli), replayed call by call as
their source makes them: `tw labels add`, `tw pipelines add|list|view`, `tw launch
<pipeline-name>` and `tw runs labels`, in a workspace given as `-w org/ws`. Every answer
of the pipelines and labels operations is checked against Seqera's spec (the `tower`
fixture)."""

from __future__ import annotations

import json

from tests.http.test_tenancy import add_participant, create_org, create_workspace
from tests.http.test_tw_sequences import Tw

API = "/api"

# Every field of Seqera's WorkflowLaunchRequest, as tw's generated client sends it.
LAUNCH_KEYS = (
    "id", "computeEnvId", "runName", "pipeline", "workDir", "revision", "commitId",
    "configProfiles", "userSecrets", "workspaceSecrets", "configText", "towerConfig",
    "paramsText", "preRunScript", "postRunScript", "mainScript", "entryName", "schemaName",
    "resume", "pullLatest", "stubRun", "sessionId", "labelIds", "headJobCpus",
    "headJobMemoryMb", "optimizationId", "optimizationTargets", "launchContainer",
    "pipelineSchemaId", "dateCreated",
)  # fmt: skip


def launch_request(**fields) -> dict:
    return {key: fields.get(key) for key in LAUNCH_KEYS}


class TwCli(Tw):
    """tw's calls past workspace resolution: AbstractApiCmd's compute environment
    lookups and LabelsFinder's find-or-create."""

    def send(self, method, path, body=None, **params):
        response = self.client.request(
            method, f"{API}{path}", headers=self.headers, params=params, json=body
        )
        assert response.status_code in (200, 204), (method, path, response.text)
        return response.json() if response.content else None

    def primary_compute_env(self, ws):
        envs = self.get("/compute-envs", status="AVAILABLE", workspaceId=ws)["computeEnvs"]
        (primary,) = [env for env in envs if env.get("primary")]
        return self.get(f"/compute-envs/{primary['id']}", workspaceId=ws)["computeEnv"]

    def label_ids(self, ws, labels: list[str], create=True) -> list[int]:
        """LabelsFinder.findLabelsIds: each `name` or `name=value` looked up by name and
        type, 100 a page, and made when missing (CREATE) or skipped (FILTER)."""
        ids = []
        for text in labels:
            name, _, value = text.partition("=")
            kind = "resource" if value else "simple"
            found = self.get("/labels", workspaceId=ws, max=100, offset=0, search=name, type=kind)
            assert found["totalSize"] is not None
            match = [
                label
                for label in found["labels"]
                if label["name"] == name and (not value or label.get("value") == value)
            ]
            if match:
                ids.append(match[0]["id"])
            elif create:
                request = {"name": name, "resource": bool(value)}
                if value:
                    request["value"] = value
                ids.append(self.send("POST", "/labels", request, workspaceId=ws)["id"])
        return ids


def _lab(tower, make_user):
    """ann owns acme/lab; ben maintains it, cy may launch there."""
    ann, ben, cy = make_user("ann"), make_user("ben"), make_user("cy")
    org = create_org(tower, ann)
    ws = create_workspace(tower, ann, org)
    add_participant(tower, ann, org, ws, "ben", "maintain")
    add_participant(tower, ann, org, ws, "cy", "launch")
    return ann, ben, cy, org, ws


def test_tw_labels_add_plain_and_resource(tower, make_user):
    ann, ben, cy, org, ws = _lab(tower, make_user)
    tw = TwCli(tower, ben)
    _, ws_id = tw.workspace("acme/lab")
    # labels add -n team -w acme/lab ; labels add -n env -v prod -w acme/lab
    plain = tw.send("POST", "/labels", {"name": "team", "resource": False}, workspaceId=ws_id)
    resource = tw.send(
        "POST", "/labels", {"name": "env", "value": "prod", "resource": True}, workspaceId=ws_id
    )
    assert (plain["name"], plain["resource"], plain.get("value")) == ("team", False, None)
    assert (resource["name"], resource["resource"], resource["value"]) == ("env", True, "prod")
    # labels list -w acme/lab (type all, no filter)
    listed = tw.get("/labels", workspaceId=ws_id, search="", type="all")
    assert [(lab["name"], lab.get("value")) for lab in listed["labels"]] == [
        ("env", "prod"),
        ("team", None),
    ]
    assert listed["totalSize"] == 2
    # cy may launch but not manage labels; the personal workspace holds none of these.
    refused = tower.post(
        f"{API}/labels", headers=cy, params={"workspaceId": ws_id}, json={"name": "mine"}
    )
    assert refused.status_code == 403 and "maintain" in refused.json()["message"]
    assert TwCli(tower, ben).get("/labels")["labels"] == []


def test_tw_pipelines_add_list_view_and_launch_by_name(tower, make_user):
    ann, ben, cy, org, ws = _lab(tower, make_user)
    tw = TwCli(tower, ben)
    org_id, ws_id = tw.workspace("acme/lab")
    # pipelines add -n hello --labels env=prod,team -r main --params-file p.yaml
    #   -p test nextflow-io/hello -w acme/lab
    visibility = tw.get(f"/orgs/{org_id}/workspaces/{ws_id}")["workspace"]["visibility"]
    assert visibility == "PRIVATE"
    env = tw.primary_compute_env(ws_id)  # a private workspace takes its primary
    created = tw.send(
        "POST",
        "/pipelines",
        {
            "name": "hello",
            "description": "Says hello",
            "version": None,
            "launch": launch_request(
                computeEnvId=env["id"],
                pipeline="nextflow-io/hello",
                revision="main",
                workDir=env["config"].get("workDir"),
                configProfiles=["test"],
                paramsText="greeting: Bonjour\n",
                preRunScript=env["config"].get("preRunScript"),
                postRunScript=env["config"].get("postRunScript"),
            ),
        },
        workspaceId=ws_id,
    )["pipeline"]
    pipeline_id = created["pipelineId"]
    assert (created["name"], created["repository"]) == ("hello", "nextflow-io/hello")
    label_ids = tw.label_ids(ws_id, ["env=prod", "team"])
    tw.send(
        "POST",
        "/pipelines/labels/apply",
        {"labelIds": label_ids, "pipelineIds": [pipeline_id]},
        workspaceId=ws_id,
    )

    # pipelines list -w acme/lab --labels (visibility private, the default)
    listed = tw.get(
        "/pipelines", attributes="labels", workspaceId=ws_id, max=100, offset=0,
        visibility="private",
    )  # fmt: skip
    assert listed["totalSize"] == 1
    (entry,) = listed["pipelines"]
    assert entry["pipelineId"] == pipeline_id and entry["workspaceName"] == "lab"
    assert sorted((lab["name"], lab.get("value")) for lab in entry["labels"]) == [
        ("env", "prod"),
        ("team", None),
    ]

    # pipelines view -n hello: found by its quoted name, described, its launch read
    (found,) = tw.get("/pipelines", workspaceId=ws_id, search='"hello"', visibility="all")[
        "pipelines"
    ]
    described = tw.get(f"/pipelines/{found['pipelineId']}", attributes="labels", workspaceId=ws_id)
    version_id = described["pipeline"]["version"]["id"]
    saved = tw.get(f"/pipelines/{pipeline_id}/launch", workspaceId=ws_id, versionId=version_id)[
        "launch"
    ]
    assert saved["pipeline"] == "nextflow-io/hello" and saved["revision"] == "main"
    assert saved["configProfiles"] == ["test"] and saved["computeEnv"]["id"] == env["id"]

    # launch hello -w acme/lab --labels run=first -n first-hello, by a launch participant
    # (the label exists: LabelsFinder only finds it, as cy may not create labels)
    first = tw.label_ids(ws_id, ["run=first"])
    cli = TwCli(tower, cy)
    pipes = cli.get(
        "/pipelines", workspaceId=ws_id, max=50, offset=0, search="hello", visibility="all"
    )
    assert pipes["totalSize"] >= 1
    (pipe,) = [p for p in pipes["pipelines"] if p["name"] == "hello"]
    launch = cli.get(f"/pipelines/{pipe['pipelineId']}/launch", workspaceId=ws_id)["launch"]
    request = launch_request(
        id=launch["id"],
        computeEnvId=launch["computeEnv"]["id"],
        pipeline=launch["pipeline"],
        workDir=launch.get("workDir"),
        revision=launch.get("revision"),
        configProfiles=launch.get("configProfiles"),
        configText=launch.get("configText"),
        paramsText=launch.get("paramsText"),
        resume=launch.get("resume"),
        pullLatest=launch.get("pullLatest"),
        stubRun=launch.get("stubRun"),
        dateCreated=launch.get("dateCreated"),
        runName="first-hello",
        labelIds=cli.label_ids(ws_id, ["run=first"], create=False),
    )
    if request["workDir"] is None:  # tw reads it from the compute environment
        ce = cli.get(f"/compute-envs/{request['computeEnvId']}", workspaceId=ws_id)
        request["workDir"] = ce["computeEnv"]["config"].get("workDir")
    run_id = cli.send("POST", "/workflow/launch", {"launch": request}, workspaceId=ws_id)[
        "workflowId"
    ]

    # The run is the saved pipeline's, with the launch's overrides and labels.
    run = cli.get(f"/workflow/{run_id}", workspaceId=ws_id, attributes="labels")
    assert run["workflow"]["runName"] == "first-hello"
    assert [(lab["name"], lab["value"]) for lab in run["labels"]] == [("run", "first")]
    assert [lab["id"] for lab in run["labels"]] == first
    relaunch = cli.get(f"/workflow/{run_id}/launch", workspaceId=ws_id)["launch"]
    assert relaunch["pipeline"] == "nextflow-io/hello" and relaunch["revision"] == "main"
    assert relaunch["configProfiles"] == ["test"]
    assert json.loads(relaunch["paramsText"]) == {"greeting": "Bonjour"}
    # runs list --labels: the labels beside each run
    runs = cli.get("/workflow", workspaceId=ws_id, attributes="labels")["workflows"]
    assert [[lab["name"] for lab in w["labels"]] for w in runs] == [["run"]]


def test_tw_launch_of_a_name_that_is_no_pipeline_finds_none(tower, make_user):
    ann, ben, cy, org, ws = _lab(tower, make_user)
    listed = TwCli(tower, cy).get(
        "/pipelines", workspaceId=ws, max=50, offset=0, search="nextflow-io/hello",
        visibility="all",
    )  # fmt: skip
    # tw says "Pipeline 'nextflow-io/hello' not found on this workspace."
    assert listed == {"pipelines": [], "totalSize": 0}


def test_tw_runs_labels_set_append_delete(tower, make_user):
    ann, ben, cy, org, ws = _lab(tower, make_user)
    run = tower.post(
        f"{API}/workflow/launch",
        headers=cy,
        params={"workspaceId": ws},
        json={"launch": {"pipeline": "nf-core/demo"}},
    ).json()["workflowId"]
    other = tower.post(
        f"{API}/workflow/launch",
        headers=cy,
        params={"workspaceId": ws},
        json={"launch": {"pipeline": "nf-core/demo"}},
    ).json()["workflowId"]
    tw = TwCli(tower, ben)

    def shown(run_id):
        described = tw.get(f"/workflow/{run_id}", workspaceId=ws, attributes="labels")
        return sorted(
            f"{lab['name']}={lab['value']}" if lab.get("value") else lab["name"]
            for lab in described["labels"]
        )

    def runs_labels(labels, operation="set"):
        # runs labels -i <id> <labels> [-o set|append|delete]
        ids = tw.label_ids(ws, labels, create=operation != "delete")
        path = {"set": "apply", "append": "add", "delete": "remove"}[operation]
        tw.send(
            "POST", f"/workflow/labels/{path}", {"labelIds": ids, "workflowIds": [run]},
            workspaceId=ws,
        )  # fmt: skip

    runs_labels(["qc", "env=test"])
    assert shown(run) == ["env=test", "qc"]
    runs_labels(["batch=7"], "append")
    assert shown(run) == ["batch=7", "env=test", "qc"]
    runs_labels(["qc", "nothing-such"], "delete")
    assert shown(run) == ["batch=7", "env=test"]
    runs_labels(["final"])
    assert shown(run) == ["final"]
    assert shown(other) == []
    # The Tower search filters by label (tw runs list -f label:final).
    found = tw.get("/workflow", workspaceId=ws, search="label:final")["workflows"]
    assert [w["workflow"]["id"] for w in found] == [run]
    assert tw.get("/workflow", workspaceId=ws, search="label:qc")["workflows"] == []


def test_tw_pipelines_update_and_delete(tower, make_user):
    ann, ben, cy, org, ws = _lab(tower, make_user)
    tw = TwCli(tower, ben)
    org_id, ws_id = tw.workspace("acme/lab")
    tw.send(
        "POST",
        "/pipelines",
        {"name": "hello", "launch": launch_request(pipeline="nextflow-io/hello", revision="main")},
        workspaceId=ws_id,
    )
    # pipelines update -n hello --new-name hi -d "Greets" -r v1.1 -w acme/lab
    (pipe,) = tw.get("/pipelines", workspaceId=ws_id, search='"hello"', visibility="all")[
        "pipelines"
    ]
    pipe = tw.get(f"/pipelines/{pipe['pipelineId']}", workspaceId=ws_id)["pipeline"]
    free = tower.get(
        f"{API}/pipelines/validate",
        headers=ben,
        params={"workspaceId": ws_id, "orgId": org_id, "name": "hi"},
    )
    assert free.status_code == 204
    version = pipe["version"]["id"]
    launch = tw.get(
        f"/pipelines/{pipe['pipelineId']}/launch", workspaceId=ws_id, versionId=version
    )["launch"]
    updated = tw.send(
        "POST",
        f"/pipelines/{pipe['pipelineId']}/versions/{version}",
        {
            "name": "hi",
            "description": "Greets",
            "launch": launch_request(
                computeEnvId=launch.get("computeEnv", {}).get("id"),
                pipeline=launch["pipeline"],
                revision="v1.1",
                configProfiles=launch.get("configProfiles"),
                pullLatest=launch.get("pullLatest"),
                stubRun=launch.get("stubRun"),
            ),
        },
        workspaceId=ws_id,
    )["pipeline"]
    # Updated in place: the same version, so tw names no new one.
    assert updated["version"]["id"] == version
    assert (updated["name"], updated["description"]) == ("hi", "Greets")
    saved = tw.get(f"/pipelines/{pipe['pipelineId']}/launch", workspaceId=ws_id)["launch"]
    assert saved["revision"] == "v1.1" and saved["pipeline"] == "nextflow-io/hello"
    taken = tower.get(
        f"{API}/pipelines/validate", headers=ben, params={"workspaceId": ws_id, "name": "hi"}
    )
    assert taken.status_code == 409 and taken.json()["message"].startswith("name:")
    # pipelines delete -n hi -w acme/lab
    (found,) = tw.get("/pipelines", workspaceId=ws_id, search='"hi"', visibility="all")["pipelines"]
    tw.send("DELETE", f"/pipelines/{found['pipelineId']}", workspaceId=ws_id)
    assert tw.get("/pipelines", workspaceId=ws_id)["totalSize"] == 0
