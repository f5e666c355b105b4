"""A ``COPY … TO STDOUT`` read straight from libpq (``psycopg.pq``), below psycopg's ``Copy`` object,
whose generators cost about 2 µs of Python per row: here a row costs a C call and a copy into one buffer
(about 0.3 µs). The COPY is started by psycopg (``cursor.copy``), which binds the parameters and, if
reading fails midway, cancels it and reads it to its end."""

from __future__ import annotations

import select
from array import array
from typing import Any


def copy_rows(driver: Any) -> tuple[bytearray, array[int]]:
    """The rows of the ``COPY … TO STDOUT`` just started on ``driver`` (a psycopg connection), read to
    the end of the COPY and of its command, whose error is raised if the COPY failed: the rows one after
    the other, and the offset where each ends.

    Each row is copied into the buffer as it comes: keeping libpq's row objects (a memoryview each) cost
    the garbage collector several times the reading itself. Waiting happens in ``poll``, the GIL released,
    never in libpq: a blocking ``PQgetCopyData`` would hold the GIL for as long as the server takes."""
    from psycopg import pq  # the postgres extra

    pgconn = driver.pgconn
    get = pgconn.get_copy_data
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    data = bytearray()
    ends: array[int] = array("q")
    mark = ends.append
    while True:
        size, row = get(1)  # 1: never waits; 0 when nothing is buffered (libpq raises on a failed read)
        while size > 0:
            data += row
            mark(len(data))
            size, row = get(1)
        if size < 0:  # the end of the COPY's data
            break
        poller.poll()
        pgconn.consume_input()
    failed = None
    while True:  # the COPY's own result (its error, if it failed), then the end of the command
        while pgconn.is_busy():
            poller.poll()
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status != pq.ExecStatus.COMMAND_OK and failed is None:
            failed = _error(result, driver.info.encoding)
    if failed is not None:
        raise failed
    return data, ends


def _error(result: Any, encoding: str) -> Exception:
    """The exception psycopg raises for the server's error ``result``: the class its SQLSTATE names
    (``psycopg.errors.lookup``), with the server's message."""
    from psycopg import errors, pq

    state = result.error_field(pq.DiagnosticField.SQLSTATE)
    message = (result.error_message or b"the COPY failed").decode(encoding, errors="replace").strip()
    try:
        kind: type[Exception] = errors.lookup(state.decode()) if state else errors.DatabaseError
    except KeyError:
        kind = errors.DatabaseError
    return kind(message)


def crlf(data: bytearray, ends: array[int]) -> bytes:
    """The rows of a CSV COPY (each a line ending in LF, ``ends`` where each ends) as lines ending in
    CRLF, as Python's csv module writes them; a line break inside a cell stays as it is."""
    if data.count(b"\n") == len(ends):  # no line break inside a cell: every LF ends a line
        return bytes(data.replace(b"\n", b"\r\n"))
    lines = bytearray()
    start = 0
    for end in ends:
        lines += data[start : end - 1]
        lines += b"\r\n"
        start = end
    return bytes(lines)
