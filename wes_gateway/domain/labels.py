"""Labels, as Seqera has them: a workspace's plain labels (``name``) and resource labels
(``name=value``), put on launchpad pipelines and on runs, and found again with the
``label:`` filter of the run search.

A label belongs to the workspace it was made in; in the personal workspace (no
``workspaceId``) it is its maker's own. Naming a label of another workspace is a 400
naming the field, as naming one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from wes_gateway.domain.errors import Forbidden, InvalidField, NotFound
from wes_gateway.domain.ids import INT32_MAX
from wes_gateway.domain.models import Label, Pipeline, PipelineLabel, Run, RunLabel
from wes_gateway.domain.tokens import Principal

# Seqera's rule for label names and values.
NAME = re.compile(r"^[a-zA-Z\d](?:[a-zA-Z\d]|[-_](?=[a-zA-Z\d])){1,38}$")
NAME_RULE = (
    "2 to 39 letters, digits, '-' or '_', starting and ending with a letter or digit, "
    "no two '-' or '_' in a row"
)
# A resource label's value: as a name, but one character is enough.
VALUE = re.compile(r"^[a-zA-Z\d](?:[a-zA-Z\d]|[-_](?=[a-zA-Z\d])){0,38}$")
VALUE_RULE = NAME_RULE.replace("2 to 39", "1 to 39")
TYPES = ("simple", "resource", "all")
INT64_MAX = 2**63 - 1
DEFAULT_MAX = 100
MAX_MAX = 1000


def person(principal: Principal) -> None:
    """Labels and the launchpad are for people: a run's own token (its head job's)
    neither reads nor changes them."""
    if principal.run_id is not None:
        raise Forbidden("a run-scoped token cannot use labels or the launchpad")


def in_scope(query: Select, principal: Principal, model=Label) -> Select:
    """``query`` narrowed to the labels (or pipelines: ``model``) of the workspace the
    principal acts in; in the personal workspace, its own. A run's token has none."""
    person(principal)
    if principal.workspace_id is not None:
        return query.where(model.workspace_id == principal.workspace_id)
    return query.where(model.workspace_id.is_(None), model.owner_id == principal.user_id)


def _text(value: Any, field: str) -> str:
    rule, text = (VALUE, VALUE_RULE) if field == "value" else (NAME, NAME_RULE)
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise InvalidField(field, f"must be {text}")
    return value


def _flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidField(field, "must be true or false")
    return value


def page_bounds(max_: int | None, offset: int | None) -> tuple[int, int]:
    if offset is not None and not 0 <= offset <= INT32_MAX:
        raise InvalidField("offset", f"must be between 0 and {INT32_MAX}")
    if max_ is not None and not 1 <= max_ <= INT32_MAX:
        raise InvalidField("max", f"must be between 1 and {INT32_MAX}")
    return min(max_ or DEFAULT_MAX, MAX_MAX), offset or 0


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%"


def list_labels(
    session: Session,
    principal: Principal,
    *,
    max_: int | None = None,
    offset: int | None = None,
    search: str | None = None,
    type_: str | None = None,
    is_default: bool | None = None,
) -> tuple[list[Label], int]:
    """The workspace's labels by name (then value): ``search`` matches a part of the
    name or value, ``type_`` is simple, resource or all."""
    person(principal)
    size, start = page_bounds(max_, offset)
    query = in_scope(select(Label), principal)
    kind = (type_ or "all").lower()
    if kind not in TYPES:
        raise InvalidField("type", f"must be one of {', '.join(TYPES)}")
    if kind != "all":
        query = query.where(Label.resource.is_(kind == "resource"))
    if search:
        pattern = _like(search)
        query = query.where(
            or_(
                func.lower(Label.name).like(pattern, escape="\\"),
                func.lower(func.coalesce(Label.value, "")).like(pattern, escape="\\"),
            )
        )
    if is_default is not None:
        query = query.where(Label.is_default.is_(is_default))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    found = session.execute(
        query.order_by(Label.name, Label.value, Label.id).limit(size).offset(start)
    ).scalars()
    return list(found), total


def _taken(session: Session, principal: Principal, name: str, value: str | None, but=None):
    query = in_scope(select(Label.id), principal).where(
        Label.name == name, Label.value.is_(None) if value is None else Label.value == value
    )
    if but is not None:
        query = query.where(Label.id != but)
    return session.execute(query.limit(1)).first() is not None


def create(session: Session, principal: Principal, body: Mapping[str, Any]) -> Label:
    """A new label: ``resource`` ones carry a ``value``, plain ones none."""
    person(principal)
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be an object")
    name = _text(body.get("name"), "name")
    resource = _flag(body.get("resource"), "resource")
    value = body.get("value")
    if value is not None and not resource:
        raise InvalidField("value", "only a resource label (resource: true) has a value")
    if resource:
        value = _text(value, "value")
    if _taken(session, principal, name, value):
        shown = name if value is None else f"{name}={value}"
        raise InvalidField("name", f"a label {shown!r} already exists in this workspace")
    label = Label(
        workspace_id=principal.workspace_id,
        owner_id=principal.user_id,
        name=name,
        value=value,
        resource=resource,
        is_default=_flag(body.get("isDefault"), "isDefault"),
    )
    session.add(label)
    session.commit()
    return label


def get(session: Session, principal: Principal, label_id: int) -> Label:
    found = session.execute(
        in_scope(select(Label), principal).where(Label.id == label_id)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"labelId: no label {label_id} in this workspace")
    return found


def update(session: Session, principal: Principal, label_id: int, body: Mapping[str, Any]) -> Label:
    label = get(session, principal, label_id)
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be an object")
    name = label.name if body.get("name") is None else _text(body["name"], "name")
    value = label.value
    if body.get("value") is not None:
        if not label.resource:
            raise InvalidField("value", "only a resource label has a value")
        value = _text(body["value"], "value")
    if _taken(session, principal, name, value, but=label.id):
        raise InvalidField("name", "another label of this workspace has that name and value")
    label.name, label.value = name, value
    if body.get("isDefault") is not None:
        label.is_default = _flag(body["isDefault"], "isDefault")
    session.commit()
    return label


def delete_label(session: Session, principal: Principal, label_id: int) -> None:
    """Delete the label; it leaves every pipeline and run it was on."""
    session.delete(get(session, principal, label_id))
    session.commit()


def resolve(session: Session, principal: Principal, ids: Any, field: str) -> list[Label]:
    """The labels of the workspace that ``ids`` (a list of label ids) names; a 400
    naming ``field`` for anything else."""
    if ids is None:
        return []
    if not isinstance(ids, list) or not all(
        isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= INT64_MAX
        for item in ids
    ):
        raise InvalidField(field, "must be a list of label ids")
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = {
        label.id: label
        for label in session.execute(
            in_scope(select(Label), principal).where(Label.id.in_(wanted))
        ).scalars()
    }
    missing = [item for item in wanted if item not in found]
    if missing:
        raise InvalidField(field, f"no label {missing[0]} in this workspace")
    return [found[item] for item in wanted]


def _change(
    session: Session, model, key, owner_ids: Sequence[Any], labels: list[Label], mode: str
) -> None:
    """Add, apply (replace with) or remove ``labels`` on each of ``owner_ids``."""
    label_ids = [label.id for label in labels]
    if mode in ("apply", "remove"):
        condition = key.in_(owner_ids)
        if mode == "remove":
            condition = condition & model.label_id.in_(label_ids)
        session.execute(delete(model).where(condition))
    if mode in ("add", "apply"):
        present = {
            (owner, label)
            for owner, label in session.execute(
                select(key, model.label_id).where(key.in_(owner_ids))
            ).all()
        }
        for owner in owner_ids:
            for label in label_ids:
                if (owner, label) not in present:
                    session.add(model(**{key.key: owner, "label_id": label}))
    session.commit()


MODES = ("add", "apply", "remove")


def _ids(value: Any, field: str, kind: type) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise InvalidField(field, "is required: a non-empty list")
    if not all(isinstance(item, kind) and not isinstance(item, bool) for item in value):
        raise InvalidField(field, f"must be a list of {'run ids' if kind is str else 'ids'}")
    if kind is int and not all(0 <= item <= INT64_MAX for item in value):
        raise InvalidField(field, "must be a list of ids between 0 and 2^63-1")
    if kind is str and not all(len(item) <= 64 for item in value):
        raise InvalidField(field, "must be a list of run ids")
    return list(dict.fromkeys(value))


def change_runs(
    session: Session, principal: Principal, body: Mapping[str, Any], mode: str, visible
) -> None:
    """``POST /workflow/labels/{mode}``: ``workflowIds`` must be runs the caller sees in
    this workspace (``visible`` narrows a query on runs), ``labelIds`` its labels."""
    person(principal)
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be an object")
    run_ids = _ids(body.get("workflowIds"), "workflowIds", str)
    labels = resolve(session, principal, body.get("labelIds"), "labelIds")
    if body.get("labelIds") is None and mode != "apply":
        raise InvalidField("labelIds", "is required: a list of label ids")
    seen = set(session.execute(visible(select(Run.id).where(Run.id.in_(run_ids)))).scalars())
    missing = [run_id for run_id in run_ids if run_id not in seen]
    if missing:
        raise InvalidField("workflowIds", f"no run {missing[0]!r} in this workspace")
    _change(session, RunLabel, RunLabel.run_id, run_ids, labels, mode)


def change_pipelines(
    session: Session, principal: Principal, body: Mapping[str, Any], mode: str
) -> None:
    """``POST /pipelines/labels/{mode}`` on the workspace's own pipelines."""
    person(principal)
    if not isinstance(body, Mapping):
        raise InvalidField("body", "must be an object")
    pipeline_ids = _ids(body.get("pipelineIds"), "pipelineIds", int)
    labels = resolve(session, principal, body.get("labelIds"), "labelIds")
    if body.get("labelIds") is None and mode != "apply":
        raise InvalidField("labelIds", "is required: a list of label ids")
    seen = set(
        session.execute(
            in_scope(select(Pipeline.id), principal, Pipeline).where(Pipeline.id.in_(pipeline_ids))
        ).scalars()
    )
    missing = [item for item in pipeline_ids if item not in seen]
    if missing:
        raise InvalidField("pipelineIds", f"no pipeline {missing[0]} in this workspace")
    set_pipeline_labels(session, pipeline_ids, labels, mode)


def set_pipeline_labels(
    session: Session, pipeline_ids: Sequence[int], labels: list[Label], mode: str = "apply"
) -> None:
    _change(session, PipelineLabel, PipelineLabel.pipeline_id, pipeline_ids, labels, mode)


def add_to_run(session: Session, run_id: str, labels: list[Label]) -> None:
    if labels:
        _change(session, RunLabel, RunLabel.run_id, [run_id], labels, "add")


def _of(session: Session, model, key, owner_ids: Iterable[Any]) -> dict[Any, list[Label]]:
    owner_ids = list(owner_ids)
    found: dict[Any, list[Label]] = {owner: [] for owner in owner_ids}
    if not owner_ids:
        return found
    rows = session.execute(
        select(key, Label)
        .join(Label, Label.id == model.label_id)
        .where(key.in_(owner_ids))
        .order_by(Label.name, Label.value, Label.id)
    ).all()
    for owner, label in rows:
        found[owner].append(label)
    return found


def of_runs(session: Session, run_ids: Iterable[str]) -> dict[str, list[Label]]:
    return _of(session, RunLabel, RunLabel.run_id, run_ids)


def of_pipelines(session: Session, pipeline_ids: Iterable[int]) -> dict[int, list[Label]]:
    return _of(session, PipelineLabel, PipelineLabel.pipeline_id, pipeline_ids)


def run_filter(value: str):
    """The condition of a ``label:`` search filter on runs: ``label:name`` (any value),
    ``label:name=value``, and comma-separated alternatives (``label:a,b``)."""
    alternatives = []
    for part in (item.strip() for item in value.split(",")):
        if not part:
            continue
        name, _, wanted = part.partition("=")
        condition = Label.name == name
        if wanted:
            condition = condition & (Label.value == wanted)
        alternatives.append(condition)
    if not alternatives:
        raise InvalidField("search", "label: expects a label name, or name=value")
    labelled = (
        select(RunLabel.run_id).join(Label, Label.id == RunLabel.label_id).where(or_(*alternatives))
    )
    return Run.id.in_(labelled)
