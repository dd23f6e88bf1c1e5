"""Errors are values: an AppError anywhere becomes the failure envelope of the contract's §3."""

from __future__ import annotations

from typing import Any, Literal, get_args

# The contract's error codes (§3), and `token_expired`, the reason a socket's connect is refused.
ErrorCode = Literal[
    "bad_request",
    "unauthorized",
    "token_expired",
    "forbidden",
    "not_found",
    "conflict",
    "too_large",
    "rate_limited",
    "unavailable",
    "internal",
]

HTTP_STATUS: dict[ErrorCode, int] = {
    "bad_request": 400,
    "unauthorized": 401,
    "token_expired": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}


assert set(HTTP_STATUS) == set(get_args(ErrorCode))


class AppError(Exception):
    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"ok": False, "error": error}


def bad_request(message: str, fields: list[dict[str, str]] | None = None) -> AppError:
    return AppError("bad_request", message, {"fields": fields or []})


def not_found(what: str = "not found") -> AppError:
    return AppError("not_found", what)


def forbidden(message: str = "not allowed") -> AppError:
    return AppError("forbidden", message)


def ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}
