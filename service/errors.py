"""One exception family for everything the service refuses or fails at, and the one place where
each becomes an HTTP status and a JSON body saying what was wrong and how to fix it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.logs import request_id_var

log = logging.getLogger("service.errors")


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, fix: str = "", headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.fix, self.headers = message, fix, headers or {}


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class InvalidInput(ServiceError):
    status, code = 422, "invalid_input"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class QueueFull(ServiceError):
    status, code = 429, "overloaded"


class DeadlineExceeded(ServiceError):
    status, code = 504, "deadline_exceeded"


class NotReady(ServiceError):
    status, code = 503, "not_ready"

    def __init__(self, message: str, fix: str = "", headers: dict[str, str] | None = None) -> None:
        # Every 503 tells clients and load balancers when to try again.
        super().__init__(message, fix, {"Retry-After": "1", **(headers or {})})


class InferenceFailed(ServiceError):
    status, code = 500, "inference_failed"


class ClientClosed(ServiceError):
    status, code = 499, "client_closed_request"  # nginx's code; nobody is left to read it


class NotFound(ServiceError):
    status, code = 404, "not_found"


class ConfigurationError(ServiceError):
    """The service cannot start as configured (bad artifact, an execution provider it lacks)."""

    code = "configuration_error"


def error_body(status: int, code: str, message: str, fix: str = "") -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if fix:
        err["fix"] = fix
    rid = request_id_var.get()
    if rid:
        err["request_id"] = rid
    return orjson.dumps({"error": err})


def error_response(status: int, code: str, message: str, fix: str = "", headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(status, code, message, fix), status, headers=headers, media_type="application/json")


def respond(request: Request, status: int, code: str, message: str, fix: str = "", headers: dict[str, str] | None = None) -> Response:
    return respond_at(request.url.path, status, code, message, fix, headers)


def respond_at(path: str, status: int, code: str, message: str, fix: str = "", headers: dict[str, str] | None = None) -> Response:
    """Our error body, or on /v2 routes the Open Inference Protocol's `{"error": "..."}`."""
    if path.startswith("/v2"):
        text = f"{message}. {fix}" if fix else message
        return Response(orjson.dumps({"error": text}), status, headers=headers, media_type="application/json")
    return error_response(status, code, message, fix, headers)


def unknown_error(path: str, exc: BaseException) -> Response:
    """An error nobody expected: logged with its traceback and the request id, answered with a
    generic 500 that carries the id (the details stay in the log)."""
    log.error("unhandled error", exc_info=exc)
    return respond_at(path, 500, "internal_error", "internal server error", "retry; if it persists, report the request_id")


def describe_validation(errors: list[Any]) -> str:
    """Pydantic's error list as one readable sentence per problem: `texts.3: String should ...`."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def known_error_response(request: Request, exc: Exception) -> Response | None:
    """The answer to an error of ours, of validation or of routing; None for any other error."""
    if isinstance(exc, ServiceError):
        if exc.status >= 500 and not isinstance(exc, NotReady):  # 503s while loading/draining are expected
            log.error("%s: %s", exc.code, exc.message)
        return respond(request, exc.status, exc.code, exc.message, exc.fix, exc.headers)
    if isinstance(exc, RequestValidationError | ValidationError):
        msg = describe_validation(list(exc.errors()))
        return respond(request, 422, "invalid_input", msg, "send a JSON body as described at /docs")
    if isinstance(exc, HTTPException):
        fixes = {404: "see /docs for the routes", 405: "see /docs for the methods of this route"}
        return respond(request, exc.status_code, "http_error", str(exc.detail), fixes.get(exc.status_code, ""), dict(exc.headers or {}))
    return None


def install(app: FastAPI) -> None:
    """Register the handlers (the same mapping service/hot_routes.py applies); routes and deep
    modules only raise."""

    async def known(request: Request, exc: Exception) -> Response:
        response = known_error_response(request, exc)
        assert response is not None  # registered for the known types only
        return response

    async def last_resort(request: Request, exc: Exception) -> Response:
        # service/middleware.py answers unknown errors of HTTP requests, with their request id;
        # this is for anything that gets past it.
        return unknown_error(request.url.path, exc)

    for kind in (ServiceError, RequestValidationError, ValidationError, HTTPException):
        app.add_exception_handler(kind, known)
    app.add_exception_handler(Exception, last_resort)
