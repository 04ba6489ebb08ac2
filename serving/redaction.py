"""Keeping submitted values out of the server log.

BentoML logs a traceback for every request that fails pydantic validation, and pydantic's error
text carries `input_value`: raw member ids, dates of birth, lab values. A log record factory,
installed once per process, replaces the exception of any record whose exception chain holds a
pydantic ValidationError with a one-line summary of field paths and rules plus the request's
pseudonymous id, so no handler (BentoML's, uvicorn's, ours) can ever print the values.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from pydantic_core import ValidationError

__all__ = ["current_request_id", "install_log_redaction", "validation_summary"]

current_request_id: ContextVar[str | None] = ContextVar("chronorisk_request_id", default=None)
"""The request being handled (set by the gatekeeper), so redacted log lines still name it."""

_installed = False


def _validation_error(exc: BaseException | None) -> ValidationError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ValidationError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None

def field_path(loc: list[Any] | tuple[Any, ...]) -> str:
    """('applicant', 'lab_results', 2, 'value') -> 'applicant.lab_results[2].value'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_summary(exc: ValidationError) -> str:
    """'3 validation errors: applicant.sex (literal_error), ...': field paths and rules, never input."""
    parts = [f"{field_path(e['loc'])} ({e['type']})" for e in exc.errors(include_input=False, include_context=False)]
    return f"{exc.error_count()} validation error(s): " + ", ".join(parts[:20]) + (" ..." if len(parts) > 20 else "")


def install_log_redaction() -> None:
    """Wrap the process's log record factory (idempotent). Called by the service and the CLI at start-up."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        exc_info = record.exc_info
        if exc_info and isinstance(exc_info, tuple):
            found = _validation_error(exc_info[1])
            if found is not None:
                request_id = current_request_id.get() or "none"
                record.msg = f"{record.getMessage()} [request {request_id}] {validation_summary(found)}"
                record.args = None
                record.exc_info, record.exc_text = None, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
