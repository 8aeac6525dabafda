"""GET /runs filters (extensions): state, tag pairs, workflow type, creation window and a
run id or name prefix; exactly the matching runs, newest first, across pages, the page
token bound to its filters; and the Tower list's search syntax with the same filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import WES, submit
from wes_gateway.domain.models import Run, RunTag
from wes_gateway.domain.states import State

API = "/api"


def _list(client, headers, **params) -> list[str]:
    """Every run id the filtered list serves, page after page (3 a page)."""
    seen: list[str] = []
    token = None
    while True:
        query = {"page_size": 3, **params}
        if token:
            query["page_token"] = token
        response = client.get(f"{WES}/runs", headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [run["run_id"] for run in body["runs"]]
        token = body["next_page_token"]
        if not token:
            return seen


def _set_state(db, run_id: str, state: State) -> None:
    with db.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state=state))
        session.commit()


@pytest.fixture
def tagged(client, alice, bob, db):
    """Ten runs of alice's with tags (newest last) and one of bob's with the same tags."""
    made = []
    for n in range(10):
        tags = {"project": "p1" if n % 2 else "p2", "sample": f"s{n % 3}"}
        if n == 4:
            tags["owner"] = "Nobody"
        made.append(submit(client, alice, tags=json.dumps(tags)))
    submit(client, bob, tags=json.dumps({"project": "p1", "sample": "s1"}))
    for run_id in made[:3]:
        _set_state(db, run_id, State.RUNNING)
    _set_state(db, made[3], State.COMPLETE)
    return made


def test_tags_are_rows_of_their_own(client, alice, db):
    run_id = submit(client, alice, tags=json.dumps({"project": "p1", "batch": 7}))
    with db.session() as session:
        rows = session.execute(
            select(RunTag.key, RunTag.value).where(RunTag.run_id == run_id)
        ).all()
    assert sorted(rows) == [("batch", "7"), ("project", "p1")]


def test_tag_pairs_all_match(client, alice, tagged):
    newest_first = list(reversed(tagged))
    expected = [r for i, r in zip(range(9, -1, -1), newest_first, strict=True) if i % 2]
    assert _list(client, alice, tag_key="project", tag_value="p1") == expected
    both = _list(client, alice, tag_key=["project", "sample"], tag_value=["p1", "s1"])
    assert both == [tagged[n] for n in (7, 1)]
    assert _list(client, alice, tag_key="owner") == [tagged[4]]
    assert _list(client, alice, tag_key="owner", tag_value="Nobody") == [tagged[4]]
    assert _list(client, alice, tag_key="owner", tag_value="Somebody") == []
    assert _list(client, alice, tag_key="project", tag_value="nobody") == []


def test_states_repeat_and_any_matches(client, alice, tagged):
    assert _list(client, alice, state="RUNNING") == list(reversed(tagged[:3]))
    assert _list(client, alice, state=["RUNNING", "COMPLETE"]) == list(reversed(tagged[:4]))
    assert _list(client, alice, state="queued") == list(reversed(tagged[4:]))
    assert _list(client, alice, state="CANCELED") == []
    combined = _list(client, alice, state="RUNNING", tag_key="project", tag_value="p2")
    assert combined == [tagged[2], tagged[0]]


def test_workflow_type_created_window_and_search(client, alice, db, tagged):
    assert _list(client, alice, workflow_type="NFL") == list(reversed(tagged))
    assert _list(client, alice, workflow_type="nextflow") == list(reversed(tagged))
    assert _list(client, alice, workflow_type="CWL") == []
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as session:
        for n, run_id in enumerate(tagged):
            session.execute(
                update(Run).where(Run.id == run_id).values(created_at=base + timedelta(hours=n))
            )
        session.execute(update(Run).where(Run.id == tagged[5]).values(run_name="golden_curie"))
        session.commit()
    window = _list(
        client,
        alice,
        created_after="2026-01-01T02:00:00Z",
        created_before="2026-01-01T06:00:00+00:00",
    )
    assert window == [tagged[5], tagged[4], tagged[3]]
    assert _list(client, alice, search="golden") == [tagged[5]]
    assert _list(client, alice, search="GOLDEN") == []
    assert _list(client, alice, search=tagged[7][:6]) == [tagged[7]]
    assert _list(client, alice, search="%") == []


def test_a_page_token_belongs_to_its_filters(client, alice, tagged):
    first = client.get(
        f"{WES}/runs",
        headers=alice,
        params={"page_size": 2, "tag_key": "project", "tag_value": "p1"},
    ).json()
    token = first["next_page_token"]
    assert token
    changed = client.get(
        f"{WES}/runs",
        headers=alice,
        params={"page_size": 2, "tag_key": "project", "tag_value": "p2", "page_token": token},
    )
    assert changed.status_code == 400
    assert changed.json()["msg"].startswith("page_token: ")
    unfiltered = client.get(f"{WES}/runs", headers=alice, params={"page_token": token})
    assert unfiltered.status_code == 400
    same = client.get(
        f"{WES}/runs",
        headers=alice,
        params={"page_size": 2, "tag_key": "project", "tag_value": "p1", "page_token": token},
    )
    assert same.status_code == 200


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"state": "DONE"}, "state"),
        ({"tag_key": ["a", "b"], "tag_value": "x"}, "tag_value"),
        ({"tag_value": "x"}, "tag_value"),
        ({"tag_key": ""}, "tag_key"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2026-13-01"}, "created_before"),
        ({"search": " "}, "search"),
    ],
)
def test_bad_filters_are_a_400_naming_them(client, alice, params, named):
    response = client.get(f"{WES}/runs", headers=alice, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["msg"].startswith(f"{named}: ")


def test_the_tower_list_takes_the_same_filters(client, alice, tagged):
    def ids(search: str) -> list[str]:
        response = client.get(f"{API}/workflow", headers=alice, params={"search": search})
        assert response.status_code == 200, response.text
        return [entry["workflow"]["id"] for entry in response.json()["workflows"]]

    assert ids("tag:owner=Nobody") == [tagged[4]]
    assert ids("tag:owner") == [tagged[4]]
    assert ids("tag:project=p1 tag:sample=s1") == [tagged[7], tagged[1]]
    assert ids("status:running") == list(reversed(tagged[:3]))
    assert ids("status:running status:succeeded") == list(reversed(tagged[:4]))
    refused = client.get(f"{API}/workflow", headers=alice, params={"search": "tag:=x"})
    assert refused.status_code == 400 and refused.json()["message"].startswith("search")
