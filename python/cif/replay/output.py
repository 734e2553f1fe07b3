"""Where replay results go: Parquet or a DuckDB table, and the ``runs`` record.

Rows: one table of features and forecasts per run (a leading ``symbol`` column, then the
feature table's columns, ``prob_<class>`` and ``forecast``).

- ``--out FILE.parquet``: the rows in that file (replaced); the runs are appended to the JSON
  list ``FILE.parquet.runs.json`` next to it.
- ``--out FILE.duckdb``: the rows appended to the table ``replay_rows`` (with a ``run_id``
  column), the runs to the table ``replay_runs`` (one row per symbol and run).

A run record says what was replayed (symbol, range, model, engine settings, source), what
came out (events, rows, forecasts, the two digests, first/last seq) and, for ``--verify``,
how it compared with the live run (``live_features_digest``, ``divergence``: 0 when
identical, else the number of divergent rows; NULL for a plain offline run).

DuckDB's NumPy scan reads NaN as NULL, so the feature columns are written through
``coalesce(col, 'NaN')``: an undefined feature stays NaN in the file (no column has real
NULLs).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from numpy.typing import NDArray

_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS replay_runs (
    run_id VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    symbol VARCHAR NOT NULL,
    from_ms BIGINT,
    to_ms BIGINT,
    events BIGINT NOT NULL,
    feature_rows BIGINT NOT NULL,
    forecast_rows BIGINT NOT NULL,
    features_digest VARCHAR NOT NULL,
    forecasts_digest VARCHAR NOT NULL,
    first_seq BIGINT,
    last_seq BIGINT,
    model VARCHAR NOT NULL,
    divergence BIGINT,
    record JSON NOT NULL
)
"""

_RUN_COLUMNS = (
    "run_id",
    "created_at",
    "mode",
    "symbol",
    "from_ms",
    "to_ms",
    "events",
    "feature_rows",
    "forecast_rows",
    "features_digest",
    "forecasts_digest",
    "first_seq",
    "last_seq",
    "model",
    "divergence",
)


def new_run(mode: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records stamped with one run id, creation time and mode."""
    run_id = uuid.uuid4().hex[:16]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return [{"run_id": run_id, "created_at": now, "mode": mode, **r} for r in records]


def _select(columns: Mapping[str, NDArray[Any]], extra: str = "") -> str:
    parts = [extra] if extra else []
    for name, col in columns.items():
        q = '"' + name.replace('"', '""') + '"'
        if np.asarray(col).dtype.kind == "f":
            parts.append(f"coalesce(frame.{q}, 'NaN'::DOUBLE) AS {q}")
        else:
            parts.append(f"frame.{q}")
    return ", ".join(parts)


def _numpy_frame(columns: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    # object (str) columns are scanned as VARCHAR; bools as BOOLEAN
    return {k: np.asarray(v) for k, v in columns.items()}


def write_rows(out: Path, columns: Mapping[str, NDArray[Any]], run_id: str) -> None:
    """The rows to ``out`` (Parquet or DuckDB, by extension)."""
    frame = _numpy_frame(columns)  # noqa: F841  (scanned by name by DuckDB)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        with duckdb.connect() as con:
            tmp = out.with_suffix(".parquet.tmp")
            con.execute(
                f"COPY (SELECT {_select(columns)} FROM frame) TO '{_sql(tmp)}' (FORMAT parquet)"
            )
            tmp.replace(out)
        return
    with duckdb.connect(str(out)) as con:
        select = _select(columns, f"'{_sql(run_id)}' AS run_id")
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'replay_rows'"
        ).fetchone()
        if exists is not None and exists[0]:
            con.execute(f"INSERT INTO replay_rows BY NAME SELECT {select} FROM frame")
        else:
            con.execute(f"CREATE TABLE replay_rows AS SELECT {select} FROM frame")


def _sql(value: str | Path) -> str:
    return str(value).replace("'", "''")


def record_runs(out: Path, runs: Sequence[Mapping[str, Any]]) -> Path:
    """Append the run records next to / into ``out``; returns where they went."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        path = out.with_name(out.name + ".runs.json")
        existing: list[Any] = json.loads(path.read_text()) if path.is_file() else []
        existing.extend(runs)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)
        return path
    with duckdb.connect(str(out)) as con:
        con.execute(_RUNS_DDL)
        for r in runs:
            values = [r.get(c) for c in _RUN_COLUMNS]
            marks = ", ".join("?" for _ in range(len(values) + 1))
            con.execute(
                f"INSERT INTO replay_runs ({', '.join(_RUN_COLUMNS)}, record) VALUES ({marks})",
                [*values, json.dumps(dict(r), sort_keys=True)],
            )
    return out


def check_out(out: Path) -> None:
    """``ValueError`` unless ``out`` names a Parquet or DuckDB file."""
    if out.suffix not in (".parquet", ".duckdb", ".db"):
        raise ValueError(f"--out must end in .parquet or .duckdb, got {out}")
