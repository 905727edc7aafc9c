"""Reading many points of a file store through ADBC's SQLite driver.

sqlite3 hands each row over as a tuple of Python objects; for a run of millions of points
that is most of an export's time. The ADBC driver (``adbc-driver-sqlite``, on the pyarrow
that pandas already needs) runs the same query and builds the columns in C, as Arrow record
batches that numpy reads without a Python object per value. It opens the store file on its
own, read-only, beside the store's own connection (WAL: it sees every committed point); a
store in memory has no file, and keeps the sqlite3 reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


def query_blocks(db_path: Path, query: str, params: Sequence[int], size: int
                 ) -> Iterator[np.ndarray]:
    """`query`'s rows (numeric columns) with `params`, in blocks of at most `size` rows,
    each block one float64 array of shape (rows, columns)."""
    import adbc_driver_sqlite

    with _connect(db_path) as connection, connection.cursor() as cursor:
        cursor.adbc_statement.set_options(
            **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(size)})
        cursor.execute(query, tuple(params))
        for batch in cursor.fetch_record_batch():
            if batch.num_rows:
                block = np.empty((batch.num_rows, batch.num_columns))
                for k, column in enumerate(batch.columns):
                    block[:, k] = column.to_numpy(zero_copy_only=False)
                yield block


def _connect(db_path: Path):
    """A read-only connection; where SQLite cannot create the WAL index next to the file (a
    read-only directory), the file is read as immutable (nobody can be writing it there), as
    the store's own read-only connection does."""
    import adbc_driver_manager
    import adbc_driver_sqlite.dbapi

    uri = db_path.resolve().as_uri()
    connection = adbc_driver_sqlite.dbapi.connect(f"{uri}?mode=ro")
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA user_version")
            cursor.fetchall()
    except adbc_driver_manager.Error:
        connection.close()
        connection = adbc_driver_sqlite.dbapi.connect(f"{uri}?immutable=1")
    return connection


__all__ = ["query_blocks"]
