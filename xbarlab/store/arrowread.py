"""Reading many points of a file store through ADBC's SQLite driver.

sqlite3 hands each row over as a tuple of Python objects; for a run of millions of points
that is most of an export's time. The ADBC driver (``adbc-driver-sqlite``) runs the same query
and builds the columns in C, as Arrow record batches whose value buffers numpy reads as they
are, without a Python object per value. It opens the store file on its own, read-only, beside
the store's own connection (WAL: it sees every committed point); a store in memory has no file,
and keeps the sqlite3 reader.

Only the driver manager's low-level API is used (its DB-API module, and pyarrow's own
``to_numpy``, import pandas: 60 MB more, against an export's memory bound).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


def query_blocks(db_path: Path, query: str, size: int) -> Iterator[np.ndarray]:
    """`query`'s rows (integer or real columns, never NULL) in blocks of at most `size` rows,
    each block one float64 array of shape (rows, columns)."""
    import adbc_driver_manager
    import adbc_driver_sqlite
    import pyarrow

    database = _open(db_path)
    try:
        with adbc_driver_manager.AdbcConnection(database) as connection, \
                adbc_driver_manager.AdbcStatement(connection) as statement:
            statement.set_options(
                **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(size)})
            statement.set_sql_query(query)
            stream, _ = statement.execute_query()
            for batch in pyarrow.RecordBatchReader._import_from_c(stream.address):
                if batch.num_rows:
                    block = np.empty((batch.num_rows, batch.num_columns))
                    for k, column in enumerate(batch.columns):
                        block[:, k] = _values(column, pyarrow)
                    yield block
    finally:
        database.close()


def _values(column, pyarrow) -> np.ndarray:
    """A column's values, read from its Arrow buffer."""
    if column.null_count:
        raise ValueError(f"column of type {column.type} has {column.null_count} NULLs; "
                         "allowed: none (the query fills them)")
    kind = np.int64 if pyarrow.types.is_integer(column.type) else np.float64
    return np.frombuffer(column.buffers()[1], dtype=kind, count=len(column),
                         offset=column.offset * 8)


def _open(db_path: Path):
    """The database read-only; where SQLite cannot create the WAL index next to the file (a
    read-only directory), read as immutable (nobody can be writing it there), as the store's
    own read-only connection does."""
    import adbc_driver_manager
    import adbc_driver_sqlite

    uri = db_path.resolve().as_uri()
    database = adbc_driver_sqlite.connect(f"{uri}?mode=ro")
    try:
        with adbc_driver_manager.AdbcConnection(database) as connection, \
                adbc_driver_manager.AdbcStatement(connection) as statement:
            statement.set_sql_query("PRAGMA user_version")
            statement.execute_query()[0].release()
    except adbc_driver_manager.Error:
        database.close()
        database = adbc_driver_sqlite.connect(f"{uri}?immutable=1")
    return database


__all__ = ["query_blocks"]
