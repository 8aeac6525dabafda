"""What the dashboard's pages share with the service comes from the service: a module
generated from its own values, and no page that writes those values out again."""

from __future__ import annotations

import json
import re

import pytest

from wes_gateway.domain.states import TaskStatus
from wes_gateway.http.ui import STATIC
from wes_gateway.infra.config import TOWER_BASE_PATH, WES_BASE_PATH


def _exports(text: str) -> dict[str, object]:
    return {
        name: json.loads(value)
        for name, value in re.findall(r"^export const (\w+) = (.*);$", text, re.MULTILINE)
    }


def test_the_facts_module_holds_the_service_s_values(client):
    response = client.get("/ui/facts.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    exports = _exports(response.text)
    assert exports["TOWER"] == TOWER_BASE_PATH and exports["WES"] == WES_BASE_PATH
    assert exports["TASK_STATUSES"] == [status.value for status in TaskStatus]
    # Where each status is counted in a run's progress (the run page keeps its task
    # list's count from the progress a live event carries).
    assert exports["TASK_STATUS_COUNTERS"]["COMPLETED"] == "succeeded"
    assert set(exports["TASK_STATUS_COUNTERS"]) == set(exports["TASK_STATUSES"])
    assert sorted(exports["FINAL_RUN_STATUSES"]) == ["CANCELLED", "FAILED", "SUCCEEDED"]


@pytest.mark.backing_independent
def test_no_page_writes_a_status_or_base_path_out_again():
    written = {path.name: path.read_text() for path in STATIC.glob("*.js")}
    for name, text in written.items():
        for value in [*(status.value for status in TaskStatus), "CANCELLED"]:
            assert f'"{value}"' not in text, f"{name} writes {value} out"
        assert f'"{WES_BASE_PATH}"' not in text and f'"{TOWER_BASE_PATH}"' not in text, name
