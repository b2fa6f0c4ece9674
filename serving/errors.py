"""The service's errors: each a domain error with its HTTP status, a stable code and, where it
applies, the request field at fault (one exception handler turns them into JSON)."""

from __future__ import annotations

from features.errors import JourneyError


class ServiceError(JourneyError):
    status = 500
    code = "internal"

    def __init__(self, message: str, field: str | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors  # every problem ({field, message}) when there are several


class BadRequestError(ServiceError):
    """A 422 lists its problems in ``errors`` like the schema's own 422s, one problem or many:
    a client reads every bad request the same way."""

    status, code = 422, "bad_request"

    def __init__(self, message: str, field: str | None = None,
                 errors: list[dict[str, str]] | None = None) -> None:
        if errors is None:
            where = field or "body"
            # The message leads with its field ("as_of: ..."); the listed one names it apart.
            errors = [{"field": where, "message": message.removeprefix(f"{where}: ")}]
        super().__init__(message, field, errors)


class UnknownCustomerError(ServiceError):
    status, code = 404, "unknown_customer"


class TooLargeError(ServiceError):
    status, code = 413, "too_large"


class MissingKeyError(ServiceError):
    status, code = 401, "missing_key"


class InvalidKeyError(ServiceError):
    status, code = 401, "invalid_key"


class ForbiddenError(ServiceError):
    status, code = 403, "forbidden"


class NotReadyError(ServiceError):
    status, code = 503, "not_ready"


class StoreFailedError(ServiceError):
    """The event store could not write (a full disk, an I/O error): a 503 to retry later,
    not a 500 that reads as a bug."""

    status, code = 503, "store_unavailable"


class ScoringBusyError(ServiceError):
    """A scoring run was asked for while one runs: its snapshot will be the newest."""

    status, code = 409, "scoring_in_progress"


class NoSnapshotError(ServiceError):
    status, code = 404, "no_snapshot"


class NotFoundError(ServiceError):
    status, code = 404, "not_found"


class UnsupportedMediaError(ServiceError):
    status, code = 415, "unsupported_media_type"
