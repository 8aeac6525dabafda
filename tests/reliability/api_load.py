"""Clients that keep calling a live gateway's two APIs from threads, recording every
answer (status, body, time taken) for a test to judge afterwards."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from tests.live import Client


@dataclass
class Call:
    """One call: sent ``at`` (monotonic clock), its answer's status (0: none came) and
    body (JSON when it was JSON), and how long it took."""

    at: float
    what: str
    status: int
    seconds: float
    body: object


class Load:
    """Clients calling the APIs until stopped: one reading (WES run, WES list, Tower
    workflow, in turn), one submitting a run every half second."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self.api = client.base.removesuffix("/ga4gh/wes/v1") + "/api"
        self.run_id = run_id
        self.calls: list[Call] = []
        self.accepted: list[str] = []
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._submit, daemon=True),
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _call(self, what: str, send) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = send()
        except httpx.TransportError as exc:  # recorded as a failure, not raised
            self.calls.append(Call(started, what, 0, time.monotonic() - started, repr(exc)))
            return None
        try:
            body = response.json()
        except ValueError:
            body = response.text
        seconds = time.monotonic() - started
        self.calls.append(Call(started, what, response.status_code, seconds, body))
        return response

    def _read(self) -> None:
        wes = self.client.base
        reads = [
            ("wes run", f"{wes}/runs/{self.run_id}"),
            ("wes list", f"{wes}/runs"),
            ("tower workflow", f"{self.api}/workflow/{self.run_id}"),
        ]
        turn = 0
        while not self.stopping.is_set():
            what, url = reads[turn % len(reads)]
            self._call(
                what, lambda url=url: httpx.get(url, headers=self.client.headers, timeout=30)
            )
            turn += 1
            time.sleep(0.05)

    def _submit(self) -> None:
        while not self.stopping.wait(0.5):
            response = self._call("wes submit", self._post_run)
            if response is not None and response.status_code == 200:
                self.accepted.append(response.json()["run_id"])

    def _post_run(self) -> httpx.Response:
        return httpx.post(
            f"{self.client.base}/runs",
            headers=self.client.headers,
            files={
                "workflow_type": (None, "NFL"),
                "workflow_type_version": (None, "DSL2"),
                "workflow_url": (None, "nf-core/demo"),
                "workflow_params": (None, '{"standin_tasks": 1, "standin_task_seconds": 0.2}'),
            },
            timeout=30,
        )
