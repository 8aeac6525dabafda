"""The caller of a Tower operation as it acts in a workspace: every handler module of the
Tower API asks here, so the role table of ``domain.tenancy`` decides in one place."""

from __future__ import annotations

from wes_gateway.domain import tenancy
from wes_gateway.http.context import principal
from wes_gateway.http.runtime import request_session


def acting(token_info: dict, workspace_id: int | None, operation: str):
    """The caller as it acts in ``workspace_id`` for ``operation`` (tenancy decides)."""
    return tenancy.acting(request_session(), principal(token_info), workspace_id, operation)
