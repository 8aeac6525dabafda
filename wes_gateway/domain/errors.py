"""The errors the domain raises, each with the HTTP status it stands for. The HTTP
layer shapes them into each API's error body (``wes_gateway.http.errors``)."""

from __future__ import annotations


class ApiError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    status = 400


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class InvalidField(BadRequest):
    """A 400 that names the field at fault."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class FieldTooLarge(PayloadTooLarge):
    """A 413 that names the field over the size limit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ServiceUnavailable(ApiError):
    """A 503: something the request depends on, outside this service, did not answer."""

    status = 503


class TooManyRequests(ApiError):
    status = 429
