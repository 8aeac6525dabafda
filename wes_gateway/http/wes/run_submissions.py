"""RunWorkflow (``POST /runs``): the checks of a submission's parts and the accepting of
its run, for every body type, and the multipart bodies served straight from the ASGI
stack.

Connexion routes, authenticates and validates the call like every other operation (it
leaves multipart bodies unread, see ``validation.UnbufferedMultipart``); then
``RunSubmissionsMiddleware`` reads a multipart body once, as it arrives: text parts into
memory under the field limit, attachments into temporary files on disk, never whole in
memory. The bridge into the WSGI app and Flask's dispatch are skipped, as for the trace
calls. JSON and URL-encoded bodies (extensions) go on to ``handlers.run_workflow``, which
takes the same steps from ``check_parts`` on.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from werkzeug.http import parse_options_header

from wes_gateway.domain import parsing, run_files, runs, tenancy
from wes_gateway.domain.errors import InvalidField, PayloadTooLarge
from wes_gateway.domain.launch import ATTACHMENT_FIELD, parse_run_request
from wes_gateway.http import dispatch
from wes_gateway.http.asgi_responses import send_json
from wes_gateway.http.context import principal
from wes_gateway.http.runtime import Runtime
from wes_gateway.http.validation import BODY
from wes_gateway.http.wes import views
from wes_gateway.infra.config import WES_BASE_PATH

OPERATION = "RunWorkflow"
MULTIPART = "multipart/form-data"
# Parts a body may hold beyond its attachments: the text fields, and a few to spare.
EXTRA_PARTS = 50
# The charsets a text part may declare; any other reads as UTF-8.
PART_CHARSETS = frozenset({"ascii", "us-ascii", "utf-8", "iso-8859-1"})
SPOOL_PREFIX = "wes-gateway-upload-"
NO_DELIMITER = "no part begins with the boundary its Content-Type names"

Fields = dict[str, list[Any]]


def check_parts(
    fields: Mapping[str, list[Any]], file_keys: Iterable[str], max_attachments: int
) -> None:
    """What a body's parts must be, whatever carried them: text fields within the field
    limit, files only as ``workflow_attachment`` parts, and not too many of them."""
    file_keys = list(file_keys)
    for key in file_keys:
        if key != ATTACHMENT_FIELD:
            raise InvalidField(key, "only workflow_attachment parts may carry files")
    if ATTACHMENT_FIELD in fields:
        raise InvalidField(ATTACHMENT_FIELD, "each attachment must be a file part with a filename")
    if len(file_keys) > max_attachments:
        raise InvalidField(ATTACHMENT_FIELD, f"more than {max_attachments} attachments")


def check_text_sizes(fields: Mapping[str, list[Any]], max_field_bytes: int) -> None:
    """Each text value of ``fields`` within the field limit (a 413 naming the field)."""
    for key, values in fields.items():
        for value in values:
            if isinstance(value, str):
                parsing.check_text_size(key, value, max_field_bytes)


def accept(
    session: Session,
    runtime: Runtime,
    token_info: dict,
    fields: Mapping[str, list[Any]],
    files: list[tuple[str | None, BinaryIO]],
) -> str:
    """Accept the run of a checked submission (``files`` pairs each attachment's name as
    sent with its stream) and hand it to the workers; its run id."""
    settings = runtime.settings
    names = run_files.check_names(name for name, _ in files)
    request = parse_run_request(
        fields,
        names,
        engine_versions=[runtime.engine_version.value],
        max_field_bytes=settings.max_field_bytes,
    )
    run = runs.create_run(
        session,
        tenancy.acting(session, principal(token_info), request.workspace_id, OPERATION),
        request,
        [(name, stream) for name, (_, stream) in zip(names, files, strict=True)],
        run_dir_of=runtime.run_dir,
        run_name=request.option("run_name"),
        tower_url=settings.public_url,
        trs_resolver=runtime.trs,
    )
    dispatch.submit(runtime.celery, run.id)
    return run.id


# --- multipart bodies, read as they arrive -------------------------------------------


@dataclass
class _Part:
    name: str
    filename: str | None
    charset: str = "utf-8"
    size: int = 0
    text: bytearray = field(default_factory=bytearray)
    spool: BinaryIO | None = None


@dataclass
class Upload:
    """A multipart body as read: its text fields (in the order first sent) and its file
    parts, each ``(part name, file name as sent, the spooled bytes)``."""

    fields: Fields = field(default_factory=dict)
    files: list[tuple[str, str, BinaryIO]] = field(default_factory=list)
    _spooled: list[tuple[BinaryIO, str]] = field(default_factory=list)

    def spool(self) -> BinaryIO:
        """A new temporary file on disk, removed again by ``discard``."""
        descriptor, path = tempfile.mkstemp(prefix=SPOOL_PREFIX)
        stream = os.fdopen(descriptor, "w+b")
        self._spooled.append((stream, path))
        return stream

    def discard(self) -> None:
        for stream, path in self._spooled:
            stream.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._spooled.clear()


class MultipartReader:
    """Feeds a multipart body to a streaming parser and keeps its parts in an ``Upload``:
    a text part in memory up to ``max_field_bytes`` (a 413 naming it beyond), a file part
    written to disk as its bytes arrive, at most ``max_parts`` parts (a 413 beyond). A
    part's headers must be UTF-8 and name it; a text part must be text of its charset
    (UTF-8 unless it declares ASCII or Latin-1); either error is a 400 naming what is
    wrong."""

    def __init__(
        self, boundary: bytes, upload: Upload, *, max_field_bytes: int, max_parts: int
    ) -> None:
        self.upload = upload
        self.max_field_bytes = max_field_bytes
        self.max_parts = max_parts
        self.parts = 0
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._in_headers = False
        self._part: _Part | None = None
        self._delimiter = b"\r\n--" + boundary
        self._preamble: bytes | None = b""
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )

    @property
    def started(self) -> bool:
        """Whether the first part's delimiter has been seen."""
        return self._preamble is None

    def feed(self, chunk: bytes) -> None:
        if self._preamble is not None:
            chunk = self._after_preamble(chunk)
            if not chunk:
                return
        try:
            self._parser.write(chunk)
        except FormParserError:
            raise InvalidField(*self._malformed()) from None

    def _after_preamble(self, chunk: bytes) -> bytes:
        """The body from its first delimiter line on, once that has arrived (RFC 2046
        lets a preamble come before it, for readers to ignore)."""
        assert self._preamble is not None
        seen = self._preamble + chunk
        if seen.startswith(self._delimiter[2:]):
            start = 0
        else:
            found = seen.find(self._delimiter)
            if found < 0:
                if len(seen) > self.max_field_bytes:
                    raise InvalidField(BODY, NO_DELIMITER)
                self._preamble = seen
                return b""
            start = found + 2
        self._preamble = None
        return seen[start:]

    def _malformed(self) -> tuple[str, str]:
        """What to name for a body the parser refused: the part whose headers it was
        reading, when they had named it (a line break inside its file name...)."""
        if self._in_headers:
            disposition = self._headers.get("content-disposition")
            name = parse_options_header(disposition)[1].get("name") if disposition else None
            if name:
                return name, "the part's headers are not well-formed"
        return BODY, "not a well-formed multipart/form-data body"

    def _part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0
        self._part = None
        self._in_headers = True

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        self._count_header(end - start)

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._count_header(end - start)

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_field_bytes:
            raise PayloadTooLarge(
                f"{BODY}: a part's headers are larger than {self.max_field_bytes // 1024} KiB"
            )

    def _header_end(self) -> None:
        try:
            name = self._header_name.decode().strip(" \t").lower()
            value = self._header_value.decode().strip(" \t")
        except UnicodeDecodeError:
            raise InvalidField(BODY, "a part's headers are not UTF-8 text") from None
        finally:
            self._header_name.clear()
            self._header_value.clear()
        self._headers[name] = value

    def _headers_finished(self) -> None:
        self._in_headers = False
        self.parts += 1
        if self.parts > self.max_parts:
            raise PayloadTooLarge(f"{BODY}: more than {self.max_parts} parts")
        disposition = self._headers.get("content-disposition")
        if disposition is None:
            raise InvalidField(BODY, "a part has no Content-Disposition header")
        options = parse_options_header(disposition)[1]
        name = options.get("name")
        if not name:
            raise InvalidField(BODY, "a part has no name (Content-Disposition: form-data; name=…)")
        part = _Part(name=name, filename=options.get("filename"))
        if part.filename is not None:
            part.spool = self.upload.spool()
        else:
            content_type = self._headers.get("content-type")
            declared = parse_options_header(content_type)[1].get("charset", "").lower()
            if declared in PART_CHARSETS:
                part.charset = declared
        self._part = part

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None
        if part.spool is not None:
            part.spool.write(data[start:end])
            return
        part.size += end - start
        if part.size > self.max_field_bytes:
            raise parsing.too_large(part.name, self.max_field_bytes)
        part.text += data[start:end]

    def _part_end(self) -> None:
        part = self._part
        assert part is not None
        if part.spool is not None:
            part.spool.flush()
            part.spool.seek(0)
            self.upload.files.append((part.name, part.filename or "", part.spool))
        else:
            try:
                value = part.text.decode(part.charset)
            except UnicodeDecodeError:
                raise InvalidField(part.name, "is not UTF-8 text") from None
            self.upload.fields.setdefault(part.name, []).append(value)
        self._part = None

    def _end(self) -> None:
        self.ended = True


async def read_multipart(
    receive: Receive, content_type: str, *, max_field_bytes: int, max_attachments: int
) -> Upload | None:
    """The parts of a multipart body, read as it arrives (its total size is bounded before
    it gets here, by ``security.BodyLimitMiddleware``); None when the client went away.
    A body cut short, or one that is not multipart, is a 400; nothing read is kept."""
    boundary = parse_options_header(content_type)[1].get("boundary")
    if not boundary:
        raise InvalidField("Content-Type", "multipart/form-data needs a boundary parameter")
    upload = Upload()
    try:
        try:
            reader = MultipartReader(
                boundary.encode("latin-1"),
                upload,
                max_field_bytes=max_field_bytes,
                max_parts=max_attachments + EXTRA_PARTS,
            )
        except (FormParserError, UnicodeEncodeError):
            raise InvalidField("Content-Type", "not a usable multipart boundary") from None
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                upload.discard()
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if chunk:
                reader.feed(chunk)
            if not message.get("more_body", False):
                break
        if received and not reader.started:
            raise InvalidField(BODY, NO_DELIMITER)
        if received and not reader.ended:
            raise InvalidField(BODY, "the multipart body ends before its closing boundary")
        return upload
    except BaseException:
        upload.discard()
        raise


class RunSubmissionsMiddleware:
    """Answers RunWorkflow with a multipart body once Connexion has routed, authenticated
    and validated it; other bodies go on to the Flask handler."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        routing = extensions.get("connexion_routing") or {}
        ours = (
            routing.get("operation_id") == OPERATION
            and routing.get("api_base_path") == WES_BASE_PATH
        )
        content_type = Headers(scope=scope).get("content-type", "") if ours else ""
        if content_type.split(";", 1)[0].strip().lower() != MULTIPART:
            await self.app(scope, receive, send)
            return
        claims = extensions["connexion_context"]["token_info"]
        settings = self.runtime.settings
        upload = await read_multipart(
            receive,
            content_type,
            max_field_bytes=settings.max_field_bytes,
            max_attachments=settings.max_attachments,
        )
        if upload is None:
            return
        try:
            file_keys = [key for key, _, _ in upload.files]
            check_parts(upload.fields, file_keys, settings.max_attachments)
            files = [(filename, stream) for _, filename, stream in upload.files]
            run_id = await run_in_threadpool(self._accept, claims, upload.fields, files)
        finally:
            upload.discard()
        await send_json(send, views.run_id(run_id), newline=True)

    def _accept(self, claims: dict, fields: Fields, files: list[tuple[str, BinaryIO]]) -> str:
        with self.runtime.db.session() as session:
            return accept(session, self.runtime, claims, fields, files)
