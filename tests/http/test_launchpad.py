"""The launchpad (/api/pipelines) and labels (/api/labels, /api/workflow/labels/*) as a
user meets them: what is saved and shown back, how a saved launch starts a run, what
is refused (a 400 naming the field), and where each belongs. Successful answers are
checked against Seqera's spec (the `tower` fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.http.test_tenancy import add_participant, create_org, create_workspace
from tests.oracle import seqera

API = "/api"


def save(client, headers, name="hello", ws=None, **launch):
    params = {"workspaceId": ws} if ws else {}
    body = {"name": name, "launch": {"pipeline": "nextflow-io/hello", **launch}}
    return client.post(f"{API}/pipelines", headers=headers, params=params, json=body)


def label(client, headers, name, value=None, ws=None) -> int:
    body = {"name": name, "resource": value is not None}
    if value is not None:
        body["value"] = value
    params = {"workspaceId": ws} if ws else {}
    response = client.post(f"{API}/labels", headers=headers, params=params, json=body)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def test_a_pipeline_is_saved_shown_changed_and_deleted(tower, alice):
    team = label(tower, alice, "team")
    made = tower.post(
        f"{API}/pipelines",
        headers=alice,
        json={
            "name": "rnaseq",
            "description": "RNA-seq, the lab's way",
            "labelIds": [team],
            "launch": {
                "pipeline": "https://github.com/nf-core/rnaseq",
                "revision": "3.14.0",
                "configProfiles": ["test", "docker"],
                "paramsText": '{"outdir": "results"}',
                "configText": "process.cpus = 2",
                "computeEnvId": "local",
                "entryName": "RNASEQ",
                "pullLatest": True,
                "sessionId": "5c0ffee0-0000-4000-8000-000000000000",
            },
        },
    )
    assert made.status_code == 200, made.text
    pipeline = made.json()["pipeline"]
    pid = pipeline["pipelineId"]
    assert pipeline["repository"] == "https://github.com/nf-core/rnaseq"
    assert [lab["name"] for lab in pipeline["labels"]] == ["team"]
    assert pipeline["computeEnv"]["id"] == "local" and pipeline["userName"] == "alice"

    saved = tower.get(f"{API}/pipelines/{pid}/launch", headers=alice).json()["launch"]
    assert saved["pipeline"] == "https://github.com/nf-core/rnaseq"
    assert saved["revision"] == "3.14.0" and saved["configProfiles"] == ["test", "docker"]
    assert saved["paramsText"] == '{"outdir": "results"}'
    assert saved["configText"] == "process.cpus = 2" and saved["entryName"] == "RNASEQ"
    assert saved["pullLatest"] is True and saved["computeEnv"]["platform"] == "local-platform"
    assert "sessionId" not in saved  # one launch's, not the pipeline's

    changed = tower.put(
        f"{API}/pipelines/{pid}",
        headers=alice,
        json={"name": "rnaseq-v2", "labelIds": [], "launch": {"pipeline": "nf-core/rnaseq"}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["pipeline"]["name"] == "rnaseq-v2"
    assert changed.json()["pipeline"]["labels"] == []
    saved = tower.get(f"{API}/pipelines/{pid}/launch", headers=alice).json()["launch"]
    assert saved["pipeline"] == "nf-core/rnaseq" and "revision" not in saved

    assert tower.delete(f"{API}/pipelines/{pid}", headers=alice).status_code == 204
    gone = tower.get(f"{API}/pipelines", headers=alice).json()
    assert gone == {"pipelines": [], "totalSize": 0}


def test_the_list_searches_sorts_pages_and_filters_by_label(tower, alice):
    prod = label(tower, alice, "env", "prod")
    for name in ("beta", "alpha", "gamma"):
        assert save(tower, alice, name).status_code == 200
    gamma = tower.get(f"{API}/pipelines", headers=alice, params={"search": '"gamma"'}).json()
    (entry,) = gamma["pipelines"]
    tower.post(
        f"{API}/pipelines/labels/add",
        headers=alice,
        json={"labelIds": [prod], "pipelineIds": [entry["pipelineId"]]},
    )

    def names(**params):
        answer = tower.get(f"{API}/pipelines", headers=alice, params=params)
        assert answer.status_code == 200, answer.text
        return [p["name"] for p in answer.json()["pipelines"]], answer.json()["totalSize"]

    assert names() == (["alpha", "beta", "gamma"], 3)
    assert names(max=2, offset=1) == (["beta", "gamma"], 3)
    assert names(sortBy="NAME", sortDir="DESCENDING") == (["gamma", "beta", "alpha"], 3)
    assert names(search="ET") == (["beta"], 1)
    assert names(search='"alph"') == ([], 0)  # quoted: that exact name
    assert names(search="label:env=prod") == (["gamma"], 1)
    assert names(search="label:env=test") == ([], 0)
    assert names(visibility="shared") == ([], 0)  # none shared from other workspaces
    assert names(visibility="ALL")[1] == 3


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "launch": {"pipeline": "nf-core/demo"}}, "name"),
        ({"name": "two--dashes", "launch": {"pipeline": "nf-core/demo"}}, "name"),
        ({"name": "ok"}, "launch"),
        ({"name": "ok", "launch": {}}, "launch.pipeline"),
        ({"name": "ok", "launch": {"pipeline": "file:///etc"}}, "launch.pipeline"),
        ({"name": "ok", "launch": {"pipeline": "a/b", "revision": "-x"}}, "launch.revision"),
        ({"name": "ok", "launch": {"pipeline": "a/b", "paramsText": "[1"}}, "launch.paramsText"),
        ({"name": "ok", "launch": {"pipeline": "a/b", "computeEnvId": "x"}}, "launch.computeEnvId"),
        ({"name": "ok", "launch": {"pipeline": "a/b", "outputDir": "x"}}, "launch.outputDir"),
        ({"name": "ok", "labelIds": [424242], "launch": {"pipeline": "a/b"}}, "labelIds"),
        ({"name": "ok", "labelIds": ["a"], "launch": {"pipeline": "a/b"}}, "labelIds[0]"),
        ({"name": "ok", "description": 7, "launch": {"pipeline": "a/b"}}, "description"),
    ],
)  # fmt: skip
def test_a_bad_pipeline_is_a_400_naming_the_field(client, alice, body, field):
    response = client.post(f"{API}/pipelines", headers=alice, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(f"{field}:"), response.text
    assert client.get(f"{API}/pipelines", headers=alice).json()["totalSize"] == 0


def test_names_are_unique_in_a_workspace_and_lists_are_checked(client, alice, bob):
    # Seqera documents no 404 for these; the answers are checked by hand where it does.
    tower = client
    assert seqera.check(save(tower, alice, "hello")).status_code == 200
    taken = client.post(
        f"{API}/pipelines",
        headers=alice,
        json={"name": "Hello", "launch": {"pipeline": "nf-core/demo"}},
    )
    assert taken.status_code == 409 and taken.json()["message"].startswith("name:")
    assert seqera.check(save(tower, bob, "hello")).status_code == 200  # bob's own workspace
    for params, field in (
        ({"visibility": "everyone"}, "visibility"),
        ({"attributes": "colour"}, "attributes"),
    ):
        refused = client.get(f"{API}/pipelines", headers=alice, params=params)
        assert refused.status_code == 400 and refused.json()["message"].startswith(field)
    pid = tower.get(f"{API}/pipelines", headers=alice).json()["pipelines"][0]["pipelineId"]
    wrong = client.get(f"{API}/pipelines/{pid}/launch", headers=alice, params={"versionId": "x"})
    assert wrong.status_code == 404 and wrong.json()["message"].startswith("versionId:")
    assert client.get(f"{API}/pipelines/{pid}", headers=bob).status_code == 404


def test_the_repository_info_is_answered_offline(tower, client, alice):
    info = tower.get(
        f"{API}/pipelines/info", headers=alice, params={"name": "nextflow-io/hello"}
    ).json()["pipelineInfo"]
    assert info["projectName"] == "nextflow-io/hello" and info["simpleName"] == "hello"
    assert info["repositoryUrl"] == "https://github.com/nextflow-io/hello"
    assert info["cloneUrl"] == "https://github.com/nextflow-io/hello.git"
    assert info["provider"] == "github" and info["warnings"]
    gitlab = tower.get(
        f"{API}/pipelines/info",
        headers=alice,
        params={"name": "https://gitlab.com/group/tool.git", "revision": "v1"},
    ).json()["pipelineInfo"]
    assert (gitlab["projectName"], gitlab["provider"], gitlab["revisionName"]) == (
        "group/tool",
        "gitlab",
        "v1",
    )
    for params, field in (
        ({}, "name"),
        ({"name": "../etc"}, "name"),
        (
            {"name": "a/b", "revision": "--x"},
            "revision",
        ),
    ):
        refused = client.get(f"{API}/pipelines/info", headers=alice, params=params)
        assert refused.status_code == 400 and refused.json()["message"].startswith(field)


def test_labels_plain_and_resource_their_rules_and_their_runs(tower, client, alice):
    plain = label(tower, alice, "qc")
    prod = label(tower, alice, "env", "prod")
    label(tower, alice, "env", "test")
    for body, field in (
        ({"name": "qc"}, "name"),  # taken
        ({"name": "env", "resource": True}, "value"),
        ({"name": "tag", "value": "x"}, "value"),
        ({"name": "a b"}, "name"),
        ({"name": "ok", "resource": "yes"}, "resource"),
    ):
        refused = client.post(f"{API}/labels", headers=alice, json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["message"].startswith(f"{field}:"), refused.text
    kinds = {
        kind: [
            (lab["name"], lab.get("value"))
            for lab in tower.get(f"{API}/labels", headers=alice, params={"type": kind}).json()[
                "labels"
            ]
        ]
        for kind in ("simple", "resource")
    }
    assert kinds == {"simple": [("qc", None)], "resource": [("env", "prod"), ("env", "test")]}
    renamed = tower.put(f"{API}/labels/{prod}", headers=alice, json={"value": "live"})
    assert renamed.status_code == 200 and renamed.json()["value"] == "live"

    run = tower.post(
        f"{API}/workflow/launch",
        headers=alice,
        json={"launch": {"pipeline": "nf-core/demo", "labelIds": [plain, prod]}},
    ).json()["workflowId"]

    def labels_of(run_id):
        answer = tower.get(
            f"{API}/workflow/{run_id}", headers=alice, params={"attributes": "labels"}
        )
        return [(lab["name"], lab.get("value")) for lab in answer.json()["labels"]]

    assert labels_of(run) == [("env", "live"), ("qc", None)]
    found = tower.get(f"{API}/workflow", headers=alice, params={"search": "label:env=live"})
    assert [w["workflow"]["id"] for w in found.json()["workflows"]] == [run]
    assert tower.delete(f"{API}/labels/{plain}", headers=alice).status_code == 204
    assert labels_of(run) == [("env", "live")]
    unasked = tower.get(f"{API}/workflow/{run}", headers=alice).json()
    assert "labels" not in unasked  # only with attributes=labels


def test_a_launch_naming_labels_it_may_not_use_is_refused_whole(client, make_user, db):
    ann, ben = make_user("ann"), make_user("ben")
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    add_participant(client, ann, org, ws, "ben", "launch")
    theirs = label(client, ann, "private")  # ann's personal workspace
    for launch, field in (
        ({"pipeline": "nf-core/demo", "labelIds": [theirs]}, "launch.labelIds"),
        ({"pipeline": "nf-core/demo", "labelIds": "1"}, "launch.labelIds"),
    ):
        refused = client.post(
            f"{API}/workflow/launch",
            headers=ben,
            params={"workspaceId": ws},
            json={"launch": launch},
        )
        assert refused.status_code == 400 and refused.json()["message"].startswith(field)
    assert (
        client.get(f"{API}/workflow", headers=ben, params={"workspaceId": ws}).json()["workflows"]
        == []
    )
    # Labelling runs takes maintain; ben launches only.
    run = client.post(
        f"{API}/workflow/launch",
        headers=ben,
        params={"workspaceId": ws},
        json={"launch": {"pipeline": "nf-core/demo"}},
    ).json()["workflowId"]
    mine = label(client, ann, "lab", ws=ws)
    body = {"labelIds": [mine], "workflowIds": [run]}
    refused = client.post(
        f"{API}/workflow/labels/add", headers=ben, params={"workspaceId": ws}, json=body
    )
    assert refused.status_code == 403
    stranger = client.post(
        f"{API}/workflow/labels/add",
        headers=ann,
        params={"workspaceId": ws},
        json={"labelIds": [mine], "workflowIds": ["x" * 14]},
    )
    assert stranger.status_code == 400 and stranger.json()["message"].startswith("workflowIds:")
    done = client.post(
        f"{API}/workflow/labels/add", headers=ann, params={"workspaceId": ws}, json=body
    )
    assert done.status_code == 204


@pytest.mark.parametrize("path", ["/pipelines/labels/add", "/workflow/labels/apply"])
@pytest.mark.parametrize("ids", [[2**63], [-1], [True], "1"])
def test_ids_out_of_range_are_a_400_naming_the_list(client, alice, path, ids):
    key, good = ("pipelineIds", [1]) if path.startswith("/pipelines") else ("workflowIds", ["x"])
    for body, field in (
        ({key: ids, "labelIds": []}, key),
        ({key: good, "labelIds": ids}, "labelIds"),
    ):
        response = client.post(f"{API}{path}", headers=alice, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"].startswith(field), response.text


def test_a_deleted_workspace_takes_its_pipelines_and_labels_along(client, make_user, db):
    ann = make_user("ann")
    org = create_org(client, ann)
    ws = create_workspace(client, ann, org)
    team = label(client, ann, "team", ws=ws)
    made = client.post(
        f"{API}/pipelines",
        headers=ann,
        params={"workspaceId": ws},
        json={"name": "kept", "labelIds": [team], "launch": {"pipeline": "nf-core/demo"}},
    )
    assert made.status_code == 200, made.text
    assert client.delete(f"{API}/orgs/{org}/workspaces/{ws}", headers=ann).status_code == 204
    with db.session() as session:
        for table in ("pipelines", "labels", "pipeline_labels"):
            count = session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert count == 0, table
