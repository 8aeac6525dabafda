"""JSON and YAML text a user sends, read within bounds. Every parse of user text goes
through here, so what a value may cost is decided in one place.

YAML anchors and aliases are refused: an alias repeats a node by reference, and a
kilobyte of nested aliases stands for gigabytes once the value is written out (the
"billion laughs"). Without them a parsed value is about as large as its text; it is held
to the text's limit all the same, measured as the JSON it is stored as.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from yaml.events import AliasEvent

from wes_gateway.domain import text
from wes_gateway.domain.errors import FieldTooLarge, InvalidField

# libyaml's parser when PyYAML has it (about seven times faster than the pure-Python one,
# and it refuses flow nesting past 1000 levels itself); both construct safe types only.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _refuse_anchors(value: str) -> None:
    """Read ``value``'s YAML events (a stream: nothing is built or kept) and stop at the
    first anchor (``&a``) or alias (``*a``), before any node could be shared or repeated."""
    for event in yaml.parse(value, Loader=_YAML_LOADER):
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise _Refused(
                "YAML anchors and aliases (&name, *name) are not accepted; write each value "
                f"out (line {mark.line + 1}, column {mark.column + 1})"
            )


def too_large(field: str, limit: int) -> FieldTooLarge:
    """The 413 of a field over the field limit (``WES_GATEWAY_MAX_FIELD_KB``)."""
    return FieldTooLarge(field, f"larger than {limit // 1024} KiB")


def check_text_size(field: str, value: str, limit: int) -> None:
    """A text field as sent: at most ``limit`` bytes of UTF-8, else a 413."""
    if len(value) * 4 > limit and len(value.encode(errors="surrogatepass")) > limit:
        raise too_large(field, limit)


def _written(value: Any) -> str:
    """``value`` written out as compact JSON, YAML-only scalars (dates, …) as text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def written_size(value: Any) -> int:
    """The bytes ``value`` takes written out as JSON (the stored and params-file form)."""
    return len(_written(value).encode(errors="surrogatepass"))


def check_value_size(field: str, value: Any, limit: int) -> None:
    """A structured field as sent (e.g. an object in a JSON body): written out as JSON,
    at most ``limit`` bytes, else a 413, the same as the text of a form part."""
    if written_size(value) > limit:
        raise too_large(field, limit)


def load_json(field: str, value: str) -> Any:
    """JSON text of ``field``, parsed; a 400 naming the field when it is not JSON, nests
    deeper than ``text.MAX_DEPTH`` or holds NaN or Infinity."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidField(field, json_problem(exc)) from None
    except RecursionError:
        raise InvalidField(field, text.TOO_DEEP) from None
    except ValueError as exc:  # past the JSON syntax: e.g. a number of 5000 digits
        raise InvalidField(field, f"not valid JSON ({exc})") from None
    problem = text.shape_problem(parsed)
    if problem:
        raise InvalidField(field, problem)
    return parsed


def json_problem(exc: json.JSONDecodeError) -> str:
    return f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


def load_yaml(field: str, value: str, limit: int) -> Any:
    """JSON or YAML text of ``field`` (YAML holds JSON), parsed into what JSON can hold:
    dates and other YAML-only scalars become text. A 413 when the text is over ``limit``
    bytes; a 400 naming the field when it is not YAML, uses anchors or aliases, nests
    too deeply, holds NaN or Infinity, or is over ``limit`` bytes once written out."""
    check_text_size(field, value, limit)
    try:
        _refuse_anchors(value)
        parsed = yaml.load(value, Loader=_YAML_LOADER)  # a safe loader
    except _Refused as exc:
        raise InvalidField(field, exc.problem) from None
    except yaml.YAMLError as exc:
        why = getattr(exc, "problem", None) or str(exc)
        raise InvalidField(field, f"not valid JSON or YAML ({why})") from None
    except RecursionError:
        raise InvalidField(field, text.TOO_DEEP) from None
    except ValueError as exc:  # a well-formed scalar YAML cannot build: 2026-13-45, 10**5000
        raise InvalidField(field, f"not valid JSON or YAML ({exc})") from None
    problem = text.shape_problem(parsed)
    if problem:
        raise InvalidField(field, problem)
    written = _written(parsed)
    if len(written.encode(errors="surrogatepass")) > limit:
        raise InvalidField(field, f"larger than {limit // 1024} KiB once parsed")
    return json.loads(written)
