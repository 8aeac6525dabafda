"""GET /runs: keyset pages, newest first, stable while runs keep arriving; forged tokens."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import WES, submit


def _page(client, headers, **params):
    response = client.get(f"{WES}/runs", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_empty_list_has_an_empty_token(client, alice):
    assert _page(client, alice) == {"runs": [], "next_page_token": ""}


def test_page_through_while_runs_arrive(client, alice):
    old = [submit(client, alice) for _ in range(250)]
    newest_first = list(reversed(old))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"page_size": 7}
        if token:
            params["page_token"] = token
        body = _page(client, alice, **params)
        assert len(body["runs"]) <= 7
        for item in body["runs"]:
            assert set(item) >= {"run_id", "state", "tags"}
            assert item["tags"] == {}
        seen.extend(item["run_id"] for item in body["runs"])
        pages += 1
        # New runs arrive between pages; they sort before the cursor and never appear.
        submit(client, alice)
        submit(client, alice)
        token = body["next_page_token"]
        if not token:
            break
    assert seen == newest_first
    assert pages == 36


def test_default_and_maximum_page_sizes(client, alice, db):
    from wes_gateway.domain import runs

    for _ in range(25):
        submit(client, alice)
    assert len(_page(client, alice)["runs"]) == runs.DEFAULT_PAGE_SIZE
    body = _page(client, alice, page_size=10**9)
    assert len(body["runs"]) == 25 and body["next_page_token"] == ""
    assert runs.page_size_or_default(10**9) == runs.MAX_PAGE_SIZE


def test_summary_fields(client, alice):
    run_id = submit(client, alice, tags='{"sample": "S1"}')
    (item,) = _page(client, alice)["runs"]
    assert item == {"run_id": run_id, "state": "QUEUED", "tags": {"sample": "S1"}}


@pytest.mark.parametrize("page_size", [0, -1])
def test_bad_page_size(client, alice, page_size):
    response = client.get(f"{WES}/runs", headers=alice, params={"page_size": page_size})
    assert response.status_code == 400
    assert response.json()["msg"].startswith("page_size:")


def test_forged_and_foreign_tokens_are_refused(client, alice, bob):
    for _ in range(3):
        submit(client, alice)
    token = _page(client, alice, page_size=1)["next_page_token"]
    assert token
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in ["garbage", "!!!", tampered, token[:-2], "e30", "A" * 500]:
        response = client.get(f"{WES}/runs", headers=alice, params={"page_token": bad})
        assert response.status_code == 400, bad
        assert response.json()["msg"].startswith("page_token:")
    # Alice's cursor is no use to Bob.
    response = client.get(f"{WES}/runs", headers=bob, params={"page_token": token})
    assert response.status_code == 400
    # And still good for Alice.
    assert len(_page(client, alice, page_size=1, page_token=token)["runs"]) == 1
