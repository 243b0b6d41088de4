"""A database outage as its clients see a restart, for the tests of what FRID does meanwhile."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def database_outage(database: dict) -> Iterator[None]:
    """The test database as its clients see a restart: connections dropped, new ones refused.

    Only this run's database goes down: the embedded server is shared with other test runs.
    """
    name = database["NAME"]
    server = {
        "host": database["HOST"], "port": database["PORT"], "user": database["USER"],
        "password": database.get("PASSWORD") or None, "dbname": "postgres", "autocommit": True,
    }
    with psycopg.connect(**server) as administration:
        administration.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        administration.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
    try:
        yield
    finally:
        with psycopg.connect(**server) as administration:
            administration.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        connection.close()  # this process's connection was dropped too
