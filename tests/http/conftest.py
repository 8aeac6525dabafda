"""Fixtures of the HTTP tests."""

from __future__ import annotations

import httpx
import pytest

from tests.oracle import seqera

API = "/api"


@pytest.fixture
def tower(client):
    """The test client, every /api answer of the tenancy, launchpad and labels
    operations (and service-info, user-info) checked against Seqera's spec."""

    def check(response: httpx.Response) -> None:
        path = response.request.url.path
        if path.startswith(
            (
                f"{API}/orgs",
                f"{API}/user",
                f"{API}/service-info",
                f"{API}/pipelines",
                f"{API}/labels",
                f"{API}/workflow/labels",
            )
        ):
            seqera.check(response)

    client.event_hooks["response"].append(check)
    return client
