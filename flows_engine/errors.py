"""Errors the engine's services raise; the API turns each into Sohar's error object."""


class EngineError(Exception):
    status = 400
    error = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def as_body(self) -> dict:
        body: dict = {"error": self.error}
        if self.param is not None:
            body["param"] = self.param
        body["message"] = self.message
        return body


class InvalidRequest(EngineError):
    pass


class BodyTooLarge(InvalidRequest):
    """A request body over Django's DATA_UPLOAD_MAX_MEMORY_SIZE (ours: Sohar documents none)."""

    status = 413


class Unauthorized(EngineError):
    status = 403
    error = "unauthorized"


class NotFound(EngineError):
    status = 404
    error = "not_found"


class Conflict(EngineError):
    """Update Run on a Run that is not PENDING (ours: Sohar leaves this undocumented)."""

    status = 409


class TemplateRefused(InvalidRequest):
    """A template document that cannot be published (ours): ``param`` is ``source``, and
    ``errors`` lists every problem with where it is (a key's dotted path, or ``document`` with
    a line and column when the text does not parse)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("\n".join(f"{where}: {what}" for where, what in problems), param="source")
        self.problems = problems

    def as_body(self) -> dict:
        body = super().as_body()
        body["errors"] = [{"location": where, "message": what} for where, what in self.problems]
        return body


class TooManyAttempts(EngineError):
    """Too many wrong client secrets for a client id or from an address (ours: the token call is
    throttled by the same lockout as staff sign-in)."""

    status = 429
    error = "rate_limited"
