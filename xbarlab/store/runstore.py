"""The run store: where runs live on disk, how they start, how they are found and resumed.

A store is one SQLite file, ``runs.sqlite3``, in a data directory chosen in this order: the
``data_dir`` argument (the CLI's ``--store``), the ``XBARLAB_DATA`` environment variable, then
``./xbarlab-data`` in the current directory. Several processes may open one store at once: one
writer per run, any number of readers (WAL journal).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import xbarlab
from xbarlab.store.calibrations import (
    read_calibration,
    read_calibrations,
    retire_calibration,
)
from xbarlab.store.records import RESUMABLE_STATUSES, STATUSES, CalibrationRecord, RunInfo
from xbarlab.store.run import (
    INFO_QUERY,
    Run,
    RunStateError,
    info_from_row,
    insert_event,
    read_run_info,
)
from xbarlab.store.schema import connect
from xbarlab.store.transfer import RunRecord, import_run
from xbarlab.store.validate import check_checkpoint_key, check_int, check_name, check_shape, to_json

DATA_DIR_ENV = "XBARLAB_DATA"
DEFAULT_DATA_DIR = "xbarlab-data"
DB_FILENAME = "runs.sqlite3"
_IN_MEMORY: Any = object()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory to use: the argument, else ``$XBARLAB_DATA``, else ``./xbarlab-data``."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


class RunStore:
    """An embedded, crash-safe store of measurement runs.

    One SQLite connection per instance, usable from the thread that created it; open another
    ``RunStore`` on the same directory for another thread or process (a live plot, a reader).

    >>> store = RunStore(tmp_dir)                               # doctest: +SKIP
    >>> with store.start_run(protocol="read-map", params={"v_read": 0.2}) as run:
    ...     run.record_point(row=0, col=0, operation="read", voltage=0.2, current=2e-6)
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, read_only: bool = False) -> None:
        """Open (creating it if needed) the store in `data_dir`; with `read_only` only an
        existing store is opened and nothing is ever written (listing, showing, exporting)."""
        if data_dir is _IN_MEMORY:
            self.data_dir = None
            self.db_path = Path(":memory:")
            self._connection = connect(self.db_path)
            return
        self.data_dir = resolve_data_dir(data_dir)
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise NotADirectoryError(
                f"data_dir = {str(self.data_dir)!r} is a file; allowed: a directory (or a path "
                "that does not exist yet)"
            )
        if not read_only:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / DB_FILENAME
        self._connection = connect(self.db_path, read_only)

    @classmethod
    def sharing(cls, connection, data_dir: Path | None) -> RunStore:
        """A store over an open connection it does not own (`Run.store`): its `close` leaves
        the connection open for its owner."""
        store = cls.__new__(cls)
        store.data_dir = data_dir
        store.db_path = data_dir / DB_FILENAME if data_dir is not None else Path(":memory:")
        store._connection = connection
        store._shared = True
        return store

    @classmethod
    def in_memory(cls) -> RunStore:
        """A store that lives in memory and vanishes with this object (a dry run's): the same
        runs, points and checkpoints, no directory, no file, and its runs draw no plots."""
        return cls(_IN_MEMORY)

    def __repr__(self) -> str:
        return f"<RunStore {self.db_path}>"

    def close(self) -> None:
        """Close the database connection; runs obtained from this store stop working (a store
        sharing another's connection leaves it open)."""
        if not getattr(self, "_shared", False):
            self._connection.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start_run(
        self,
        protocol: str,
        params: dict[str, Any] | None = None,
        bench_text: str = "",
        instruments: dict[str, Any] | None = None,
        seed: int | None = None,
        shape: tuple[int, int] | None = None,
        parent: int | None = None,
    ) -> Run:
        """Create a run with status ``running`` and return it, writable.

        ``bench_text`` is the bench file's full text, ``instruments`` maps instrument names to
        their identities (``*IDN?`` replies, addresses), ``params`` are the protocol parameters
        (JSON). ``shape`` is the crossbar's (rows, cols); when given, every point's row and
        column and every map's shape are checked against it. ``parent`` is the run this one is
        a stage of (a pipeline's), which must exist.
        """
        if parent is not None:
            read_run_info(self._connection, parent)
        for field, value, kind in (
            ("bench_text", bench_text, str),
            ("params", {} if params is None else params, dict),
            ("instruments", {} if instruments is None else instruments, dict),
        ):
            if not isinstance(value, kind):
                raise TypeError(
                    f"{field} must be a {kind.__name__}, got {value!r} ({type(value).__name__})"
                )
        values = (
            check_name("protocol", protocol),
            to_json("params", {} if params is None else params),
            bench_text,
            to_json("instruments", {} if instruments is None else instruments),
            xbarlab.__version__,
            None if seed is None else check_int("seed", seed, limit=2**63),
            *(check_shape(shape) or (None, None)),
            time.time(),
            socket.gethostname(),
            os.getpid(),
            parent,
        )
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            cursor = self._connection.execute(
                "INSERT INTO runs (protocol, params_json, bench_text, instruments_json,"
                " software_version, seed, shape_rows, shape_cols, started_at, writer_host,"
                " writer_pid, parent_id, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                values,
            )
            insert_event(self._connection, cursor.lastrowid, "started", None, values[8])
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
        return Run(self._connection, cursor.lastrowid, writable=True)

    def import_run(self, record: RunRecord, parent: int | None = None,
                   checkpoints: dict[str, Any] | None = None) -> int:
        """Write a run taken from another store (`Run.record`) as a new run of this one, with
        every point, map, checkpoint, event and snapshot exactly as stored there, plus
        `checkpoints`, in one transaction; a child of run `parent` if given. Returns its id."""
        if parent is not None:
            read_run_info(self._connection, parent)
        extra = {check_checkpoint_key(key): to_json(key, value)
                 for key, value in (checkpoints or {}).items()}
        return import_run(self._connection, record, parent, extra)

    def children(self, parent: int) -> list[RunInfo]:
        """The runs whose parent is run `parent` (a campaign's tasks, a pipeline's stages), in
        the order they were stored."""
        read_run_info(self._connection, parent)
        rows = self._connection.execute(INFO_QUERY + " WHERE r.parent_id = ? ORDER BY r.run_id",
                                        (parent,))
        return [info_from_row(row) for row in rows]

    def runs(self, status: str | None = None) -> list[RunInfo]:
        """Every run (optionally only those with ``status``), newest first."""
        query, args = INFO_QUERY, ()
        if status is not None:
            if status not in STATUSES:
                raise ValueError(
                    f"status = {status!r} is not known; allowed: {', '.join(STATUSES)}"
                )
            query, args = query + " WHERE r.status = ?", (status,)
        rows = self._connection.execute(query + " ORDER BY r.run_id DESC", args)
        return [info_from_row(row) for row in rows]

    def run_info(self, run_id: int) -> RunInfo:
        """Metadata of one run; ``RunNotFoundError`` naming the stored ids if unknown."""
        return read_run_info(self._connection, run_id)

    def calibrations(self, chip_id: str | None = None, retired: bool = False
                     ) -> list[CalibrationRecord]:
        """Calibration records, newest first: of chip `chip_id` or every chip, the retired
        ones too when `retired`."""
        return read_calibrations(self._connection, chip_id, retired)

    def calibration(self, calibration_id: int) -> CalibrationRecord:
        """One calibration record; `CalibrationNotFoundError` naming the stored ids."""
        return read_calibration(self._connection, calibration_id)

    def latest_calibration(self, chip_id: str) -> CalibrationRecord | None:
        """The newest calibration record of chip `chip_id` that is not retired, or None."""
        records = read_calibrations(self._connection, chip_id)
        return records[0] if records else None

    def retire_calibration(self, calibration_id: int) -> CalibrationRecord:
        """Retire a calibration record: later runs on its chip no longer use it."""
        return retire_calibration(self._connection, calibration_id)

    def open_run(self, run_id: int) -> Run:
        """The run ``run_id``, read-only (for ``xbarlab show``, export and plots)."""
        return Run(self._connection, run_id, writable=False)

    def resume(self, run_id: int, force: bool = False) -> Run:
        """Reopen an interrupted run for writing; its status returns to ``running``.

        Allowed for runs left ``running`` by a crashed process, ``aborted`` and ``failed`` runs.
        A ``running`` run whose writer process is still alive on this host, or ran on another
        host, is refused unless ``force=True`` (two writers would interleave their points).
        """
        info = read_run_info(self._connection, run_id)
        if info.status not in RESUMABLE_STATUSES:
            raise RunStateError(
                f"run {info.run_id} status is {info.status!r} and cannot be resumed; "
                f"allowed: {', '.join(RESUMABLE_STATUSES)}"
            )
        if info.status == "running" and not force:
            _refuse_if_writer_may_live(info)
        now = time.time()
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            self._connection.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, traceback = NULL,"
                " writer_host = ?, writer_pid = ? WHERE run_id = ?",
                (socket.gethostname(), os.getpid(), info.run_id),
            )
            detail = f"previous status {info.status}"
            if info.traceback:
                detail += f"\n{info.traceback}"
            insert_event(self._connection, info.run_id, "resumed", detail, now)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")
        return Run(self._connection, info.run_id, writable=True)


def shown_status(info: RunInfo) -> str:
    """The status to show for a run: ``interrupted`` for a run still marked ``running``
    whose writer process on this host is gone (killed, or its disk filled up before it could
    store its end); the stored status otherwise (a writer on another host cannot be checked)."""
    if info.status == "running" and info.writer_host == socket.gethostname() \
            and not _process_alive(info.writer_pid):
        return "interrupted"
    return info.status


def _refuse_if_writer_may_live(info: RunInfo) -> None:
    """Raise ``RunStateError`` unless the process that was writing ``info`` is surely gone."""
    if info.writer_host != socket.gethostname():
        raise RunStateError(
            f"run {info.run_id} is marked running by pid {info.writer_pid} on host "
            f"{info.writer_host!r}, which this host cannot check; pass force=True if that "
            "process is gone"
        )
    if _process_alive(info.writer_pid):
        raise RunStateError(
            f"run {info.run_id} is still being written by pid {info.writer_pid} on this host; "
            "stop that process first, or pass force=True if the pid now belongs to another program"
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
