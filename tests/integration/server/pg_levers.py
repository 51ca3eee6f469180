"""An isolated PostgreSQL login role and schema with the superuser's levers on them, for the tests
that break a running server's store on purpose (terminated connections, refused logins, a
revoked permission, a schema renamed away)."""

from __future__ import annotations

import psycopg


class Pg:
    """An isolated role and schema, and the superuser's levers on them."""

    def __init__(self, dsn: str, name: str) -> None:
        self.dsn, self.role, self.schema = dsn, f"{name}_r", name
        self.admin = psycopg.connect(dsn, autocommit=True)
        self.admin.execute(f'CREATE ROLE "{self.role}" LOGIN')
        self.admin.execute(f'CREATE SCHEMA "{self.schema}"')
        self.admin.execute(f'GRANT USAGE, CREATE ON SCHEMA "{self.schema}" TO "{self.role}"')
        host = dsn.split("@", 1)[1]
        # The server's own connections carry an application name the levers select them by.
        self.url = f"postgresql://{self.role}@{host}?schema={self.schema}&application_name={name}"

    def sql(self, text: str) -> None:
        self.admin.execute(text)

    def terminate(self) -> int:
        """End every backend of the role and wait until they are gone (the termination itself
        is asynchronous)."""
        rows = self.admin.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = %s", (self.role,)
        ).fetchall()
        return len(rows)

    def schema_exists(self, name: str) -> bool:
        return (
            self.admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
            is not None
        )

    def close(self) -> None:
        self.sql(f'ALTER ROLE "{self.role}" LOGIN')
        self.terminate()
        for schema in (self.schema, f"{self.schema}_away"):
            self.sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.sql(f'DROP OWNED BY "{self.role}" CASCADE')
        self.sql(f'DROP ROLE IF EXISTS "{self.role}"')
        self.admin.close()
