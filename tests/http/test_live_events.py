"""Live updates by server-sent events against `wes-gateway serve`: a run's stream follows
its trace calls, resumes from Last-Event-ID, is refused as the run's describe is, and is
bounded per user; the run list's stream announces new runs of the caller only. On the
suite's database: SQLite (a poll of ``run_changes``) or PostgreSQL (LISTEN/NOTIFY)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import empty_database
from tests.domain.test_trace import sample
from tests.http.test_tenancy import add_participant, create_org, create_workspace
from tests.live import cli_env, run_cli, serve, until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A server of its own, on an empty database of the suite's kind (PostgreSQL: the
    LISTEN/NOTIFY path; SQLite: the shared poll)."""
    folder = tmp_path_factory.mktemp("events")
    data_dir = folder / "data"
    with empty_database(folder) as database_url:
        env = cli_env(
            data_dir,
            database_url,
            WES_GATEWAY_EMBEDDED_WORKER="false",
            WES_GATEWAY_EVENTS_KEEPALIVE="1",
            WES_GATEWAY_EVENTS_STREAM_SECONDS="60",
            WES_GATEWAY_EVENTS_STREAMS_PER_USER="3",
        )
        with serve(env) as (base, _process):
            people = {
                name: {
                    "Authorization": "Bearer "
                    + run_cli(env, "token", "create", name).stdout.strip()
                }
                for name in ("alice", "bob", "carol")
            }
            yield {"base": base, "database_url": database_url, "data_dir": data_dir, **people}


class Stream:
    """An event stream read in a thread: its status, its events ({"id", "event", "data"})
    and how many comment lines (keep-alives) came."""

    def __init__(self, url: str, headers=None, params=None) -> None:
        self.status: int | None = None
        self.body = ""
        self.retry: str | None = None
        self.events: list[dict[str, str]] = []
        self.comments = 0
        self.closed = False
        self.ended_at: float | None = None  # when the server ended the stream
        self._answered = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(url, headers or {}, params or {}), daemon=True
        )
        self._thread.start()
        assert self._answered.wait(20), "the stream did not answer"

    def _read(self, url, headers, params) -> None:
        timeout = httpx.Timeout(10, read=30)
        with httpx.stream("GET", url, headers=headers, params=params, timeout=timeout) as response:
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "")
            if response.status_code != 200:
                self.body = response.read().decode()
                self._answered.set()
                return
            self._answered.set()
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if self.closed:
                    return
                if line.startswith(":"):
                    self.comments += 1
                elif line == "":
                    if "retry" in fields and len(fields) == 1:
                        self.retry = fields["retry"]
                    elif fields:
                        self.events.append(fields)
                    fields = {}
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        self.ended_at = time.monotonic()

    def named(self, name: str) -> list[dict[str, str]]:
        return [event for event in self.events if event.get("event") == name]

    def changes(self) -> list[tuple[int, str, list[str]]]:
        found = []
        for event in self.named("change"):
            data = json.loads(event["data"])
            found.append((int(event.get("id", 0)), data["workflowId"], data["kinds"]))
        return found

    def close(self) -> None:
        self.closed = True
        self._thread.join(10)


def _new_run(gateway, who: str = "alice") -> str:
    body = sample("01-create")
    body.pop("workflowId")
    response = httpx.post(f"{gateway['base']}/api/trace/create", headers=gateway[who], json=body)
    assert response.status_code == 200, response.text
    return response.json()["workflowId"]


def _trace(gateway, run_id: str, step: str, name: str, who: str = "alice") -> None:
    response = httpx.put(
        f"{gateway['base']}/api/trace/{run_id}/{step}",
        headers=gateway[who],
        json=sample(name, run_id),
    )
    assert response.status_code == 200, response.text


def _progress(gateway, run_id: str, tasks: list[dict], who: str = "alice") -> None:
    body = {"tasks": tasks, "instant": 1}
    response = httpx.put(
        f"{gateway['base']}/api/trace/{run_id}/progress", headers=gateway[who], json=body
    )
    assert response.status_code == 200, response.text


def _task(task_id: int, status: str, process: str = "sayHello") -> dict:
    record = {"taskId": task_id, "status": status, "name": f"{process} ({task_id})"}
    record.update(process=process, hash=f"{task_id:02d}/abcdef", exit=0, cpus=1)
    if status != "SUBMITTED":
        record["start"] = "2026-05-06T12:04:50.587Z"
    if status == "COMPLETED":
        record["complete"] = "2026-05-06T12:04:51.690Z"
    return record


def _status(gateway, run_id: str) -> str:
    response = httpx.get(f"{gateway['base']}/api/workflow/{run_id}", headers=gateway["alice"])
    return response.json()["workflow"]["status"]


def _listeners(gateway) -> int:
    """Connections listening for run changes on this server's database (other servers
    of the machine may listen on theirs)."""
    engine = create_engine(gateway["database_url"])
    with engine.connect() as connection:
        count = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN %' AND datname = current_database()"
            )
        ).scalar_one()
    engine.dispose()
    return count


def _run_stream(gateway, run_id: str, headers=None, params=None) -> Stream:
    return Stream(f"{gateway['base']}/api/workflow/{run_id}/events", headers, params)


def test_a_runs_stream_follows_its_trace_calls_as_they_arrive(gateway):
    run_id = _new_run(gateway)
    stream = _run_stream(gateway, run_id, gateway["alice"])
    try:
        assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
        (ready,) = until(lambda: stream.named("ready"), "the stream's first event")
        assert stream.retry == "3000"

        _trace(gateway, run_id, "begin", "02-begin")
        until(lambda: stream.changes(), "a change after begin")
        assert _status(gateway, run_id).upper() == "RUNNING"
        _trace(gateway, run_id, "progress", "03-progress")
        until(lambda: any("tasks" in kinds for *_, kinds in stream.changes()), "the tasks")
        # The change carries what the page shows of the run: no describe needed for it.
        data = json.loads(stream.named("change")[-1]["data"])
        progress = httpx.get(
            f"{gateway['base']}/api/workflow/{run_id}/progress", headers=gateway["alice"]
        ).json()["progress"]
        assert (data["status"], data["state"]) == ("RUNNING", "RUNNING")
        assert data["progress"] == progress
        _trace(gateway, run_id, "complete", "05-complete")
        until(lambda: len(stream.changes()) >= 3, "the end of the run")
        assert _status(gateway, run_id).upper() == "SUCCEEDED"
        until(lambda: stream.comments >= 1, "a keep-alive comment")
        if gateway["database_url"].startswith("postgresql"):
            # One listening connection of the server's, whatever the number of streams.
            assert _listeners(gateway) == 1

        changes = stream.changes()
        ids = [int(ready["id"])] + [event_id for event_id, _, _ in changes]
        assert ids == sorted(set(ids)), ids  # every id greater than the one before
        assert {run for _, run, _ in changes} == {run_id}
        assert all("status" in kinds for *_, kinds in changes), changes
    finally:
        stream.close()


def test_last_event_id_resumes_and_an_id_no_longer_kept_resets(gateway):
    run_id = _new_run(gateway)
    live = _run_stream(gateway, run_id, gateway["alice"])
    try:
        (ready,) = until(lambda: live.named("ready"), "the first event")
        _trace(gateway, run_id, "begin", "02-begin")
        _trace(gateway, run_id, "progress", "03-progress")
        seen = until(lambda: len(live.changes()) >= 2 and live.changes(), "two changes")
    finally:
        live.close()
    # What was missed since the first event, by header (as EventSource sends it) or query.
    by_header = _run_stream(gateway, run_id, {**gateway["alice"], "Last-Event-ID": ready["id"]})
    by_query = _run_stream(gateway, run_id, gateway["alice"], {"lastEventId": ready["id"]})
    since_first = _run_stream(
        gateway, run_id, {**gateway["alice"], "Last-Event-ID": str(seen[0][0])}
    )
    try:
        for resumed in (by_header, by_query):
            until(lambda r=resumed: len(r.changes()) >= 2, "the replayed changes")
            assert resumed.changes()[:2] == seen[:2]
            assert not resumed.named("ready") and not resumed.named("reset")
        until(lambda: since_first.changes(), "the change after the first")
        assert since_first.changes()[0] == seen[1]
    finally:
        for stream in (by_header, by_query, since_first):
            stream.close()

    # Once the changes after an id are pruned, resuming from it is a reset.
    engine = create_engine(gateway["database_url"])
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM run_changes WHERE seq <= :seq"), {"seq": seen[0][0]})
    engine.dispose()
    for stale in (str(int(ready["id"]) - 1), "999999999999"):
        resumed = _run_stream(gateway, run_id, {**gateway["alice"], "Last-Event-ID": stale})
        try:
            (reset,) = until(lambda r=resumed: r.named("reset"), "a reset")
            assert int(reset["id"]) >= seen[-1][0]
            assert not resumed.changes()
        finally:
            resumed.close()
    bad = _run_stream(gateway, run_id, {**gateway["alice"], "Last-Event-ID": "soon"})
    assert bad.status == 400 and "Last-Event-ID" in json.loads(bad.body)["message"]


def test_a_grown_console_comes_in_the_stream_as_the_log_page_reads_it(gateway):
    run_id = _new_run(gateway)
    console = gateway["data_dir"] / "runs" / run_id / f"nf-{run_id}.txt"
    console.parent.mkdir(parents=True, exist_ok=True)
    console.write_text("N E X T F L O W\npartial")
    stream = _run_stream(gateway, run_id, gateway["alice"])
    try:
        until(lambda: stream.named("ready"), "the first event")
        with console.open("a") as out:
            out.write(" line\nexecutor >  local (1)\n")

        def log_event():
            for event in stream.named("change"):
                data = json.loads(event["data"])
                if data["kinds"] == ["log"]:
                    return event, data
            return None

        event, data = until(log_event, "the console's new lines")
        assert "id" not in event  # a file's growth is no numbered change
        assert data["entries"] == ["partial line", "executor >  local (1)"]
        page = httpx.get(
            f"{gateway['base']}/api/workflow/{run_id}/log",
            headers=gateway["alice"],
            params={"next": data["from"], "maxLength": 65536},
        ).json()["log"]
        assert (page["entries"], page["forwardToken"]) == (data["entries"], data["next"])
    finally:
        stream.close()


def test_a_stream_is_refused_as_the_runs_describe_is(gateway):
    base = gateway["base"]
    run_id = _new_run(gateway)
    describe = f"{base}/api/workflow/{run_id}"
    cases = {
        "no token": {},
        "unknown token": {"Authorization": "Bearer nope"},
        "another user": gateway["bob"],
    }
    for what, headers in cases.items():
        expected = httpx.get(describe, headers=headers)
        stream = _run_stream(gateway, run_id, headers)
        assert expected.status_code in (401, 404), what
        assert (stream.status, json.loads(stream.body)) == (
            expected.status_code,
            expected.json(),
        ), what
    # Another user gets no ticket for it either.
    refused = httpx.post(f"{describe}/events/ticket", headers=gateway["bob"])
    assert refused.status_code == 404, refused.text

    # A ticket opens its own run's stream, without the token; nothing else.
    answer = httpx.post(f"{describe}/events/ticket", headers=gateway["alice"])
    assert answer.status_code == 200, answer.text
    ticket = answer.json()["ticket"]
    assert answer.json()["expiresIn"] == 60
    assert "Bearer" not in ticket and gateway["alice"]["Authorization"][7:] not in ticket
    opened = _run_stream(gateway, run_id, params={"ticket": ticket})
    try:
        assert opened.status == 200
        until(lambda: opened.named("ready"), "the ticket's stream")
    finally:
        opened.close()
    other_run = _new_run(gateway)
    elsewhere = _run_stream(gateway, other_run, params={"ticket": ticket})
    assert elsewhere.status == 403 and "ticket" in json.loads(elsewhere.body)["message"]
    listing = Stream(f"{base}/api/workflow-events", params={"ticket": ticket})
    assert listing.status == 403
    # Another signature (its first character changed: each of its bits counts, where the
    # last character's lowest bits are base64 padding that decoding drops).
    body, signature = ticket.rsplit(".", 1)
    other = ("B" if signature[0] == "A" else "A") + signature[1:]
    forged = _run_stream(gateway, run_id, params={"ticket": f"{body}.{other}"})
    assert forged.status == 401
    # A ticket ends with the token it was made with.
    made = httpx.post(f"{base}/api/tokens", headers=gateway["alice"], json={"name": "tab"})
    assert made.status_code == 200, made.text
    tab = {"Authorization": f"Bearer {made.json()['accessKey']}"}
    short = httpx.post(f"{describe}/events/ticket", headers=tab).json()["ticket"]
    revoked = httpx.delete(
        f"{base}/api/tokens/{made.json()['token']['id']}", headers=gateway["alice"]
    )
    assert revoked.status_code == 204, revoked.text
    assert _run_stream(gateway, run_id, params={"ticket": short}).status == 401
    # The ticket is good for streams only: not as a token, not on describe.
    assert httpx.get(describe, params={"ticket": ticket}).status_code == 401
    assert httpx.get(describe, headers={"Authorization": f"Bearer {ticket}"}).status_code == 401


def test_each_user_keeps_a_bounded_number_of_streams_open(gateway):
    run_id = _new_run(gateway, "carol")
    streams = [_run_stream(gateway, run_id, gateway["carol"]) for _ in range(3)]
    try:
        assert [stream.status for stream in streams] == [200, 200, 200]
        one_more = _run_stream(gateway, run_id, gateway["carol"])
        assert one_more.status == 429
        assert "event streams open" in json.loads(one_more.body)["message"]
        # Another user is not held back by carol's streams.
        alices = _run_stream(gateway, _new_run(gateway), gateway["alice"])
        assert alices.status == 200
        alices.close()
        streams.pop().close()

        def reopened():
            stream = _run_stream(gateway, run_id, gateway["carol"])
            if stream.status == 200:
                streams.append(stream)
                return True
            return False

        until(reopened, "a stream again once one was closed", timeout=15)
    finally:
        for stream in streams:
            stream.close()


def test_the_run_lists_stream_announces_the_callers_new_runs_only(gateway):
    base = gateway["base"]
    ticket = httpx.post(f"{base}/api/workflow-events/ticket", headers=gateway["alice"])
    assert ticket.status_code == 200, ticket.text
    stream = Stream(f"{base}/api/workflow-events", params={"ticket": ticket.json()["ticket"]})
    try:
        until(lambda: stream.named("ready"), "the first event")
        bobs = _new_run(gateway, "bob")
        alices = _new_run(gateway, "alice")
        _trace(gateway, alices, "begin", "02-begin")
        until(
            lambda: any(run == alices and "status" in k for _, run, k in stream.changes()),
            "alice's run beginning",
        )
        changes = stream.changes()
        assert any(run == alices and "added" in kinds for _, run, kinds in changes), changes
        assert bobs not in {run for _, run, _ in changes}
        deleted = httpx.delete(f"{base}/api/workflow/{alices}?force=true", headers=gateway["alice"])
        assert deleted.status_code == 204, deleted.text
        until(
            lambda: any(run == alices and "removed" in k for _, run, k in stream.changes()),
            "alice's run removed",
        )
    finally:
        stream.close()


def test_streams_hold_no_request_thread(gateway):
    """Many open streams, and the API still answers at once (they are coroutines)."""
    people = ["alice", "bob", "carol"]
    runs = {who: _new_run(gateway, who) for who in people}
    streams = [_run_stream(gateway, runs[who], gateway[who]) for who in people for _ in range(3)]
    try:
        assert all(stream.status == 200 for stream in streams)
        started = time.monotonic()
        for _ in range(5):
            answer = httpx.get(
                f"{gateway['base']}/api/workflow/{runs['alice']}", headers=gateway["alice"]
            )
            assert answer.status_code == 200
        assert time.monotonic() - started < 5
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.backing_independent
def test_the_dashboard_never_puts_the_api_token_in_a_stream_url():
    source = (
        Path(__file__).resolve().parents[2] / "wes_gateway/http/ui/static/live.js"
    ).read_text()
    assert "EventSource(" in source and "ticket" in source
    assert "token.get()" not in source.split("EventSource(")[1].split(")")[0]


def test_a_change_of_tasks_carries_the_records_written_since_the_last_event(gateway):
    """A page updates its task rows from the event: the records changed since the
    previous event, as the tasks list shows them (more than 100 of them: see
    tests/domain/test_task_changes.py); at the run's end the event names the change only
    (the page reads the list)."""
    base = gateway["base"]
    run_id = _new_run(gateway)
    stream = _run_stream(gateway, run_id, gateway["alice"])

    def tasks_event(after: int):
        for event in stream.named("change")[after:]:
            data = json.loads(event["data"])
            if "tasks" in data["kinds"]:
                return data
        return None

    def listed() -> dict[int, dict]:
        answer = httpx.get(
            f"{base}/api/workflow/{run_id}/tasks", headers=gateway["alice"], params={"max": 1000}
        ).json()
        return {item["task"]["taskId"]: item for item in answer["tasks"]}

    try:
        until(lambda: stream.named("ready"), "the first event")
        _trace(gateway, run_id, "begin", "02-begin")
        seen = len(until(lambda: stream.named("change"), "the run beginning"))
        _progress(gateway, run_id, [_task(1, "RUNNING"), _task(2, "SUBMITTED")])
        first = until(lambda: tasks_event(seen), "the first tasks")
        rows = listed()
        assert first["tasks"] == [rows[1], rows[2]]
        assert [item["task"]["status"] for item in first["tasks"]] == ["RUNNING", "SUBMITTED"]
        assert first["progress"]["workflowProgress"]["running"] == 1

        # The next event: only what was written since, with the counts that go with it.
        seen = len(stream.named("change"))
        _progress(gateway, run_id, [_task(1, "COMPLETED")])
        second = until(lambda: tasks_event(seen), "the task ending")
        assert second["tasks"] == [listed()[1]]
        assert second["tasks"][0]["task"]["status"] == "COMPLETED"
        counts = second["progress"]["workflowProgress"]
        assert (counts["succeeded"], counts["running"], counts["submitted"]) == (1, 0, 1)

        # The run's end: its unfinished tasks end with it, and the page reads them.
        seen = len(stream.named("change"))
        _trace(gateway, run_id, "complete", "05-complete")
        ended = until(lambda: tasks_event(seen), "the run's end")
        assert ended["status"] == "SUCCEEDED" and "tasks" not in ended
    finally:
        stream.close()


def _own_token(gateway, who: str, name: str) -> tuple[dict[str, str], str]:
    made = httpx.post(f"{gateway['base']}/api/tokens", headers=gateway[who], json={"name": name})
    assert made.status_code == 200, made.text
    return {"Authorization": f"Bearer {made.json()['accessKey']}"}, made.json()["token"]["id"]


ENDS_WITHIN = 10  # seconds: a stream checks its caller every 5


def test_an_open_stream_ends_once_its_token_is_revoked(gateway):
    base = gateway["base"]
    run_id = _new_run(gateway)
    tab, token_id = _own_token(gateway, "alice", "revoked-tab")
    ticket = httpx.post(f"{base}/api/workflow-events/ticket", headers=tab).json()["ticket"]
    by_token = _run_stream(gateway, run_id, tab)
    by_ticket = Stream(f"{base}/api/workflow-events", params={"ticket": ticket})
    kept = _run_stream(gateway, run_id, gateway["alice"])  # another token of alice's
    try:
        for stream in (by_token, by_ticket, kept):
            until(lambda s=stream: s.named("ready"), "the first event")
        revoked = httpx.delete(f"{base}/api/tokens/{token_id}", headers=gateway["alice"])
        assert revoked.status_code == 204, revoked.text
        at = time.monotonic()
        until(lambda: by_token.ended_at and by_ticket.ended_at, "the streams ending", ENDS_WITHIN)
        assert max(by_token.ended_at, by_ticket.ended_at) - at < ENDS_WITHIN
        # A stream of a token still in force goes on, and still tells what changes.
        _trace(gateway, run_id, "begin", "02-begin")
        until(lambda: kept.changes(), "a change on the stream kept")
        assert kept.ended_at is None
        # Reconnecting with the revoked token is refused.
        assert _run_stream(gateway, run_id, tab).status == 401
    finally:
        for stream in (by_token, by_ticket, kept):
            stream.close()


def test_an_open_stream_ends_once_its_caller_leaves_the_workspace(gateway):
    base = gateway["base"]
    with httpx.Client(base_url=base, timeout=30) as tower:
        org = create_org(tower, gateway["alice"], "stream-lab")
        ws = create_workspace(tower, gateway["alice"], org, "streams")
        tower.put(f"/api/orgs/{org}/members/add", headers=gateway["alice"], json={"user": "bob"})
        participant = add_participant(tower, gateway["alice"], org, ws, "bob", "view")
        body = sample("01-create")
        body.pop("workflowId")
        made = tower.post(
            "/api/trace/create", headers=gateway["alice"], params={"workspaceId": ws}, json=body
        )
        assert made.status_code == 200, made.text
        run_id = made.json()["workflowId"]
        in_ws = {"workspaceId": ws}
        run_stream = _run_stream(gateway, run_id, gateway["bob"], in_ws)
        list_stream = Stream(f"{base}/api/workflow-events", gateway["bob"], in_ws)
        owners = _run_stream(gateway, run_id, gateway["alice"], in_ws)
        try:
            for stream in (run_stream, list_stream, owners):
                assert stream.status == 200, stream.body
                until(lambda s=stream: s.named("ready"), "the first event")
            removed = tower.delete(
                f"/api/orgs/{org}/workspaces/{ws}/participants/{participant}",
                headers=gateway["alice"],
            )
            assert removed.status_code == 204, removed.text
            at = time.monotonic()
            until(
                lambda: run_stream.ended_at and list_stream.ended_at,
                "bob's streams ending",
                ENDS_WITHIN,
            )
            assert max(run_stream.ended_at, list_stream.ended_at) - at < ENDS_WITHIN
            assert owners.ended_at is None  # the workspace's owner still reads it
            assert _run_stream(gateway, run_id, gateway["bob"], in_ws).status == 403
        finally:
            for stream in (run_stream, list_stream, owners):
                stream.close()
