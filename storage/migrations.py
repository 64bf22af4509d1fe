"""Named, ordered schema migrations, applied in a transaction when a catalog is opened.

Append new migrations at the end and never edit a released one: an older workspace then
opens in a newer mlyard by running only the steps it has not seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import duckdb

from mlyard.storage.errors import CatalogError

MIGRATIONS: list[tuple[str, str]] = [
    (
        "initial catalog",
        """
        CREATE TABLE projects (
            name VARCHAR PRIMARY KEY,
            created_at DOUBLE NOT NULL
        );
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            project VARCHAR NOT NULL,
            name VARCHAR,
            status VARCHAR NOT NULL,
            start_time DOUBLE NOT NULL,
            end_time DOUBLE,
            heartbeat DOUBLE NOT NULL,
            pid INTEGER,
            host VARCHAR,
            user_name VARCHAR,
            error VARCHAR
        );
        CREATE TABLE params (
            run_id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value VARCHAR NOT NULL,
            PRIMARY KEY (run_id, key)
        );
        CREATE TABLE tags (
            run_id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value VARCHAR NOT NULL,
            PRIMARY KEY (run_id, key)
        );
        CREATE TABLE metrics (
            run_id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value DOUBLE,
            step BIGINT NOT NULL,
            ts DOUBLE NOT NULL
        );
        CREATE TABLE latest_metrics (
            run_id VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            value DOUBLE,
            step BIGINT NOT NULL,
            ts DOUBLE NOT NULL,
            PRIMARY KEY (run_id, key)
        );
        CREATE TABLE artifacts (
            run_id VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            object_hash VARCHAR NOT NULL,
            size BIGINT NOT NULL,
            created_at DOUBLE NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        CREATE TABLE datasets (
            name VARCHAR PRIMARY KEY,
            created_at DOUBLE NOT NULL,
            contract JSON
        );
        CREATE TABLE dataset_versions (
            dataset VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            source_hash VARCHAR NOT NULL,
            source_path VARCHAR NOT NULL,
            snapshot_hash VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            schema JSON NOT NULL,
            profile JSON NOT NULL,
            warnings JSON NOT NULL,
            created_at DOUBLE NOT NULL,
            PRIMARY KEY (dataset, seq),
            UNIQUE (dataset, source_hash)
        );
        CREATE SEQUENCE event_ids;
        CREATE TABLE events (
            event_id BIGINT PRIMARY KEY DEFAULT nextval('event_ids'),
            ts DOUBLE NOT NULL,
            kind VARCHAR NOT NULL,
            subject VARCHAR NOT NULL,
            actor VARCHAR,
            detail JSON
        );
        CREATE TABLE spool_segments (
            name VARCHAR PRIMARY KEY,
            ingested_at DOUBLE NOT NULL,
            rows BIGINT NOT NULL
        );
        CREATE INDEX metrics_run_key ON metrics (run_id, key);
        """,
    ),
    (
        "model registry and run inputs",
        """
        CREATE TABLE run_inputs (
            run_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            snapshot_hash VARCHAR NOT NULL,
            PRIMARY KEY (run_id, dataset, seq)
        );
        CREATE TABLE model_versions (
            model VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            run_id VARCHAR NOT NULL,
            model_hash VARCHAR NOT NULL,
            card_hash VARCHAR NOT NULL,
            created_at DOUBLE NOT NULL,
            created_by VARCHAR,
            PRIMARY KEY (model, version),
            UNIQUE (model, run_id)
        );
        CREATE TABLE aliases (
            model VARCHAR NOT NULL,
            alias VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            updated_at DOUBLE NOT NULL,
            PRIMARY KEY (model, alias)
        );
        CREATE SEQUENCE alias_move_ids;
        CREATE TABLE alias_moves (
            move_id BIGINT PRIMARY KEY DEFAULT nextval('alias_move_ids'),
            model VARCHAR NOT NULL,
            alias VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            from_version INTEGER,
            to_version INTEGER NOT NULL,
            ts DOUBLE NOT NULL,
            actor VARCHAR,
            reason VARCHAR
        );
        """,
    ),
    (
        "run logs",
        """
        CREATE TABLE run_logs (
            run_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            ts DOUBLE NOT NULL,
            stream VARCHAR NOT NULL,
            line VARCHAR NOT NULL
        );
        CREATE INDEX run_logs_run ON run_logs (run_id, seq);
        """,
    ),
    (
        "prediction log",
        """
        CREATE TABLE predictions (
            request_id VARCHAR NOT NULL,
            ts DOUBLE NOT NULL,
            model VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            rows INTEGER NOT NULL,
            -- JSON arrays, one element per scored row, as text: the JSON type would
            -- parse every value on insert, on the serving hot path
            inputs VARCHAR NOT NULL,
            outputs VARCHAR NOT NULL
        );
        """,
    ),
    (
        "schedules, jobs and the daemon's status",
        """
        CREATE TABLE schedules (
            project VARCHAR NOT NULL,
            name VARCHAR NOT NULL,
            cron VARCHAR,
            every_seconds DOUBLE,
            pipeline VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            paused BOOLEAN NOT NULL,
            created_at DOUBLE NOT NULL,
            last_fire DOUBLE,
            PRIMARY KEY (project, name)
        );
        CREATE SEQUENCE job_ids;
        CREATE TABLE jobs (
            job_id BIGINT PRIMARY KEY DEFAULT nextval('job_ids'),
            project VARCHAR NOT NULL,
            pipeline_id BIGINT,
            step VARCHAR NOT NULL,
            trigger VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            started_at DOUBLE NOT NULL,
            ended_at DOUBLE,
            pid INTEGER,
            host VARCHAR,
            run_id VARCHAR,
            detail VARCHAR,
            error VARCHAR,
            log_path VARCHAR
        );
        CREATE TABLE daemons (
            project VARCHAR PRIMARY KEY,
            pid INTEGER NOT NULL,
            host VARCHAR NOT NULL,
            started_at DOUBLE NOT NULL,
            heartbeat DOUBLE NOT NULL,
            stopped_at DOUBLE,
            status VARCHAR NOT NULL
        );
        """,
    ),
    (
        "drift reports and live performance",
        """
        CREATE SEQUENCE drift_report_ids;
        CREATE TABLE drift_reports (
            report_id BIGINT PRIMARY KEY DEFAULT nextval('drift_report_ids'),
            project VARCHAR NOT NULL,
            ts DOUBLE NOT NULL,
            model VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            reference_run VARCHAR NOT NULL,
            current_kind VARCHAR NOT NULL,
            current_label VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            drifted INTEGER NOT NULL,
            features INTEGER NOT NULL,
            dataset_drift BOOLEAN NOT NULL,
            severity VARCHAR NOT NULL,
            detail VARCHAR NOT NULL
        );
        CREATE TABLE drift_columns (
            report_id BIGINT NOT NULL,
            role VARCHAR NOT NULL,
            column_name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            statistic DOUBLE,
            threshold DOUBLE NOT NULL,
            drifted BOOLEAN NOT NULL,
            psi DOUBLE,
            PRIMARY KEY (report_id, role, column_name)
        );
        CREATE TABLE performance (
            project VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            window_start DOUBLE NOT NULL,
            window_end DOUBLE NOT NULL,
            rows BIGINT NOT NULL,
            metrics VARCHAR NOT NULL,
            computed_at DOUBLE NOT NULL,
            PRIMARY KEY (project, model, version, window_start)
        );
        """,
    ),
    (
        "tuning journal",
        """
        -- Optuna's journal storage: an append-only log every tuning process replays,
        -- so several processes can share one study.
        CREATE TABLE tune_journal (
            seq BIGINT PRIMARY KEY,
            ts DOUBLE NOT NULL,
            entry VARCHAR NOT NULL
        );
        """,
    ),
    (
        "the prediction log moves to Parquet files",
        # Its rows are copied out first (catalog._move_predictions_out): a stream that
        # grows with traffic made the catalog too large to checkpoint.
        "DROP TABLE predictions;",
    ),
    (
        "dataset versions record the contract they were checked against",
        # The same bytes checked against a changed contract may clean differently, so the
        # source alone no longer identifies a version. NULL: checked before this existed.
        """
        CREATE TABLE dataset_versions_next (
            dataset VARCHAR NOT NULL,
            seq INTEGER NOT NULL,
            source_hash VARCHAR NOT NULL,
            source_path VARCHAR NOT NULL,
            snapshot_hash VARCHAR NOT NULL,
            rows BIGINT NOT NULL,
            schema JSON NOT NULL,
            profile JSON NOT NULL,
            warnings JSON NOT NULL,
            created_at DOUBLE NOT NULL,
            contract_hash VARCHAR,
            PRIMARY KEY (dataset, seq)
        );
        INSERT INTO dataset_versions_next
            SELECT dataset, seq, source_hash, source_path, snapshot_hash, rows, schema,
                   profile, warnings, created_at, NULL FROM dataset_versions;
        DROP TABLE dataset_versions;
        ALTER TABLE dataset_versions_next RENAME TO dataset_versions;
        """,
    ),
    (
        "alert deliveries",
        # `alert.*` events are the outbox; each attempt to deliver one to a receiver is a
        # row here, and the cursor marks how far the events have been looked at.
        """
        CREATE TABLE alert_deliveries (
            event_id BIGINT NOT NULL,
            receiver VARCHAR NOT NULL,
            attempt INTEGER NOT NULL,
            ts DOUBLE NOT NULL,
            outcome VARCHAR NOT NULL,
            error VARCHAR,
            next_try DOUBLE,
            PRIMARY KEY (event_id, receiver, attempt)
        );
        CREATE TABLE alert_cursor (
            one INTEGER PRIMARY KEY,
            event_id BIGINT NOT NULL
        );
        """,
    ),
    (
        "workspace identity",
        # A random id made once per catalog: a sync records which workspace a copied run
        # came from by it, so only that workspace can update the copy (a path can move,
        # and two remotes can share one).
        """
        CREATE TABLE workspace_identity (
            one INTEGER PRIMARY KEY,
            id VARCHAR NOT NULL
        );
        INSERT INTO workspace_identity VALUES (1, uuid()::VARCHAR);
        """,
    ),
    (
        "segment performance",
        # Live figures per group of each segment, per model version and window, beside
        # the overall ones in `performance` (JSON: small, and read whole).
        """
        CREATE TABLE segment_performance (
            project VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            window_start DOUBLE NOT NULL,
            figures VARCHAR NOT NULL,
            PRIMARY KEY (project, model, version, window_start)
        );
        """,
    ),
]
PREDICTIONS_OUT = 8  # the migration above, which needs the copy first


def apply_migrations(con: duckdb.DuckDBPyConnection, catalog_name: str,
                     before: Mapping[int, Callable[[duckdb.DuckDBPyConnection], None]]
                     ) -> None:
    """Bring the schema up to date, each migration in its own transaction; `before[n]`
    runs first inside migration n's transaction (work SQL alone cannot do)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at DOUBLE NOT NULL)"
    )
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    current = int(row[0]) if row else 0
    if current > len(MIGRATIONS):
        raise CatalogError(
            f"{catalog_name}: schema version {current} was written by a newer mlyard "
            f"(this one knows {len(MIGRATIONS)}); upgrade mlyard to open it"
        )
    for version, (name, sql) in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        con.begin()
        try:
            if version in before:
                before[version](con)
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, time.time()]
            )
            con.commit()
        except Exception:
            con.rollback()
            raise


def schema_version() -> int:
    return len(MIGRATIONS)
