"""A worker keeps the backend it built for a compute environment and uses it again, until
the environment's config or its credentials change, or it has been kept long enough."""

from __future__ import annotations

import pytest

from workers import built_backends
from workers.built_backends import BuiltBackends

pytestmark = pytest.mark.backing_independent


class Built:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self):
        self.count += 1
        return object()


def test_the_same_config_gets_the_same_backend():
    kept, build = BuiltBackends(), Built()
    config = {"region": "eu-west-1", "headQueue": "head", "credentials": {"accessKey": "A"}}
    first = kept.get("aws-batch", config, build)
    again = kept.get("aws-batch", dict(reversed(list(config.items()))), build)
    assert again is first and build.count == 1


@pytest.mark.parametrize(
    ("platform", "config"),
    [
        (
            "aws-batch",
            {"region": "eu-west-1", "headQueue": "other", "credentials": {"accessKey": "A"}},
        ),
        (
            "aws-batch",
            {"region": "eu-west-1", "headQueue": "head", "credentials": {"accessKey": "B"}},
        ),
        (
            "google-batch",
            {"region": "eu-west-1", "headQueue": "head", "credentials": {"accessKey": "A"}},
        ),
    ],
)
def test_a_changed_config_or_credentials_get_a_new_one(platform, config):
    kept, build = BuiltBackends(), Built()
    before = {"region": "eu-west-1", "headQueue": "head", "credentials": {"accessKey": "A"}}
    first = kept.get("aws-batch", before, build)
    assert kept.get(platform, config, build) is not first
    assert build.count == 2


def test_a_backend_is_kept_for_a_while_and_a_few_at_most(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(built_backends.time, "monotonic", lambda: clock[0])
    kept, build = BuiltBackends(ttl=60, most=2), Built()
    first = kept.get(None, {"n": 1}, build)
    clock[0] += 59
    assert kept.get(None, {"n": 1}, build) is first
    clock[0] += 2
    assert kept.get(None, {"n": 1}, build) is not first  # built 61 s ago: built again
    kept.get(None, {"n": 2}, build)
    kept.get(None, {"n": 3}, build)  # a third: the least recently used one goes
    assert build.count == 4
    kept.get(None, {"n": 3}, build)
    kept.get(None, {"n": 2}, build)
    assert build.count == 4
    kept.get(None, {"n": 1}, build)
    assert build.count == 5
