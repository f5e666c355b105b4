"""Reading a COPY below psycopg's Copy object (services.pg_copy) on a real server: the rows come whole
and in order however libpq splits them, an error that ends the COPY midway is raised (no silent
truncation), the connection is left ready for the next command, and other threads run while it waits.
Lines ending in LF become CRLF, line breaks inside cells staying as they are."""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import pytest

from services.pg_copy import copy_rows, crlf


@pytest.fixture(scope="module")
def connection() -> Iterator[Any]:
    import psycopg

    from tests.postgres_server import libpq_url, run_postgres

    with run_postgres() as url, psycopg.connect(libpq_url(url)) as conn:
        yield conn


def test_every_row_in_order(connection: Any) -> None:
    # ~3 MB: more than libpq's input buffer takes at once, so the reader waits on the socket many times
    sql = "COPY (SELECT n, repeat('x', n % 500 + 1) FROM generate_series(1, 20000) n) TO STDOUT (FORMAT csv)"
    with connection.cursor() as cursor, cursor.copy(sql):
        data, ends = copy_rows(connection)
    lines = [f"{n},{'x' * (n % 500 + 1)}\n".encode() for n in range(1, 20_001)]
    assert data == b"".join(lines) and list(ends) == list(accumulate(len(line) for line in lines))
    assert connection.execute("SELECT 1").fetchone() == (1,)
    connection.rollback()


def test_an_error_midway_is_raised(connection: Any) -> None:
    import psycopg

    sql = "COPY (SELECT 1 / (15000 - n) FROM generate_series(1, 20000) n) TO STDOUT WITH (FORMAT csv)"
    with pytest.raises(psycopg.errors.DivisionByZero), connection.cursor() as cursor, cursor.copy(sql):
        copy_rows(connection)
    assert connection.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    connection.rollback()
    assert connection.execute("SELECT 2").fetchone() == (2,)
    connection.rollback()


def test_other_threads_run_while_it_waits(connection: Any) -> None:
    counted = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counted[0] += 1

    # 100 kB of rows (the server sends them in 8 kB pieces), then a pause before the last one
    slow = "CASE WHEN n = 1000 THEN pg_sleep(0.3)::text END"
    sql = f"COPY (SELECT n, repeat('x', 100), {slow} FROM generate_series(1, 1000) n) TO STDOUT"
    counter = threading.Thread(target=count)
    counter.start()
    try:
        before = counted[0]
        time.sleep(0.3)  # what the counter does in 0.3 s while this thread waits without the GIL
        free = counted[0] - before
        with connection.cursor() as cursor, cursor.copy(sql):
            before = counted[0]
            data, ends = copy_rows(connection)
            during = counted[0] - before
    finally:
        stop.set()
        counter.join()
    connection.rollback()
    assert len(ends) == 1_000 and data.endswith(b"1000\t" + b"x" * 100 + b"\t\n")
    # a wait holding the GIL left it a fiftieth of that (what it got while the first rows were read)
    assert during > free / 4


def test_crlf() -> None:
    rows = [b"1,plain\n", b'2,"in\ncell"\n', b'3,"cr\r\nlf"\n', b"4,\n"]
    ends = array("q", accumulate(len(row) for row in rows))
    expected = b'1,plain\r\n2,"in\ncell"\r\n3,"cr\r\nlf"\r\n4,\r\n'
    assert crlf(bytearray(b"".join(rows)), ends) == expected
    assert crlf(bytearray(b"1,a\n2,b\n"), array("q", [4, 8])) == b"1,a\r\n2,b\r\n"
    assert crlf(bytearray(), array("q")) == b""
