"""Tower's int64 query parameters refuse a value past 2^63-1 with a 400, as the spec's
`format: int64` says, instead of reading it as any other number."""

from __future__ import annotations

import pytest

from tests.conftest import submit

API = "/api"
INT64_MAX = 2**63 - 1


@pytest.mark.parametrize("path", ["/workflow", "/workflows", "/workflow/{id}", "/compute-envs"])
def test_workspace_id_past_int64_is_a_bad_request(client, alice, path):
    run_id = submit(client, alice)
    url = f"{API}{path.format(id=run_id)}"
    # In range, a workspace alice takes no part in: Seqera's 403.
    assert client.get(url, params={"workspaceId": INT64_MAX}, headers=alice).status_code == 403
    response = client.get(url, params={"workspaceId": INT64_MAX + 1}, headers=alice)
    assert response.status_code == 400
    assert response.json()["message"].startswith("workspaceId:")


def test_workspace_id_past_int64_is_refused_by_the_trace_calls_too(client, alice):
    run_id = submit(client, alice)
    response = client.put(
        f"{API}/trace/{run_id}/heartbeat",
        params={"workspaceId": INT64_MAX + 1},
        headers=alice,
        json={"progress": None},
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("workspaceId:")


def test_log_max_length_past_int64_is_a_bad_request(client, alice):
    run_id = submit(client, alice)
    url = f"{API}/workflow/{run_id}/log"
    assert client.get(url, params={"maxLength": INT64_MAX}, headers=alice).status_code == 200
    response = client.get(url, params={"maxLength": INT64_MAX + 1}, headers=alice)
    assert response.status_code == 400
    assert response.json()["message"].startswith("maxLength:")
