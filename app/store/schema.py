"""Versioned migrations. Append a new (version, sql) pair; never edit a released one.

Opening an older data dir applies the missing steps in order, inside one transaction each.
"""
from __future__ import annotations

from app.store.stats import fill_bins_sql

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE SEQUENCE IF NOT EXISTS seq_projects START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_classes START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_videos START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_tracks START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_boxes START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_versions START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_runs START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_models START 1;
        CREATE SEQUENCE IF NOT EXISTS seq_edits START 1;

        CREATE TABLE projects (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_projects'),
            name VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by VARCHAR
        );
        CREATE TABLE label_classes (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_classes'),
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            color VARCHAR NOT NULL,
            UNIQUE (project_id, name)
        );
        -- A video or an image set. status: ingesting | ready | failed
        CREATE TABLE videos (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_videos'),
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL DEFAULT 'video',
            status VARCHAR NOT NULL DEFAULT 'ingesting',
            width INTEGER, height INTEGER,
            fps DOUBLE, frame_count INTEGER, duration DOUBLE, codec VARCHAR,
            stride INTEGER NOT NULL DEFAULT 1,
            work_width INTEGER, work_height INTEGER,
            job_id VARCHAR,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by VARCHAR,
            UNIQUE (project_id, name)
        );
        -- idx: tpod's frame index (0..frame_count-1), the same in ingest, labeling, export, import.
        -- source_idx: the decoded frame number in the original file (differs when stride > 1).
        CREATE TABLE frames (
            video_id INTEGER NOT NULL,
            idx INTEGER NOT NULL,
            source_idx INTEGER NOT NULL,
            ts DOUBLE NOT NULL,
            name VARCHAR,
            width INTEGER, height INTEGER,
            reviewed BOOLEAN NOT NULL DEFAULT false,
            PRIMARY KEY (video_id, idx)
        );
        CREATE TABLE tracks (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_tracks'),
            video_id INTEGER NOT NULL,
            class_id INTEGER NOT NULL,
            reviewed BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by VARCHAR
        );
        -- Pixel xyxy in ORIGINAL video coordinates. rev increments on each update (stale-edit check).
        CREATE TABLE boxes (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_boxes'),
            video_id INTEGER NOT NULL,
            frame_idx INTEGER NOT NULL,
            track_id INTEGER NOT NULL,
            class_id INTEGER NOT NULL,
            x1 DOUBLE NOT NULL, y1 DOUBLE NOT NULL, x2 DOUBLE NOT NULL, y2 DOUBLE NOT NULL,
            source VARCHAR NOT NULL,
            confidence DOUBLE,
            outside BOOLEAN NOT NULL DEFAULT false,
            keyframe BOOLEAN NOT NULL DEFAULT false,
            author VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            rev INTEGER NOT NULL DEFAULT 1,
            UNIQUE (track_id, frame_idx)
        );
        CREATE INDEX boxes_video_frame ON boxes (video_id, frame_idx);
        -- Undo log and per-author activity: one row per user action that changed labels.
        CREATE TABLE edits (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_edits'),
            project_id INTEGER,
            video_id INTEGER,
            author VARCHAR,
            edited_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            action VARCHAR NOT NULL,
            payload JSON,
            undone BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE dataset_versions (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_versions'),
            project_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            params JSON,
            stats JSON,
            classes JSON,
            path VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            created_by VARCHAR,
            UNIQUE (project_id, name)
        );
        -- The frozen snapshot: one row per (version, frame, box); box columns NULL for empty frames.
        CREATE TABLE version_items (
            version_id INTEGER NOT NULL,
            split VARCHAR NOT NULL,
            video_id INTEGER NOT NULL,
            frame_idx INTEGER NOT NULL,
            image VARCHAR NOT NULL,
            width INTEGER, height INTEGER,
            class_index INTEGER,
            track_id INTEGER,
            x1 DOUBLE, y1 DOUBLE, x2 DOUBLE, y2 DOUBLE,
            source VARCHAR
        );
        -- Background jobs the web side enqueued; workers report through the queue's storage and
        -- the web side copies what they said here (app/jobstate.py).
        CREATE TABLE jobs (
            id VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            project_id INTEGER,
            state VARCHAR NOT NULL DEFAULT 'queued',
            params JSON,
            progress JSON,
            result JSON,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            started_at TIMESTAMP,
            finished_at TIMESTAMP,
            recorded BOOLEAN NOT NULL DEFAULT false,
            created_by VARCHAR
        );
        CREATE TABLE training_runs (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_runs'),
            project_id INTEGER NOT NULL,
            version_id INTEGER NOT NULL,
            job_id VARCHAR,
            model_arch VARCHAR NOT NULL,
            params JSON,
            state VARCHAR NOT NULL DEFAULT 'queued',
            history JSON,
            error VARCHAR,
            run_dir VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at TIMESTAMP,
            created_by VARCHAR
        );
        CREATE TABLE models (
            id INTEGER PRIMARY KEY DEFAULT nextval('seq_models'),
            project_id INTEGER NOT NULL,
            run_id INTEGER,
            version_id INTEGER,
            name VARCHAR NOT NULL,
            arch VARCHAR,
            path VARCHAR NOT NULL,
            classes JSON,
            metrics JSON,
            params JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """,
    ),
    (
        2,
        # Small precomputed bins per box for the dataset stats (see app/store/stats.py _bin_exprs);
        # bins_rev: the box rev they were computed at (NULL: not computed yet).
        """
        ALTER TABLE boxes ADD COLUMN bin_size SMALLINT;
        ALTER TABLE boxes ADD COLUMN bin_heat SMALLINT;
        ALTER TABLE boxes ADD COLUMN bin_shape SMALLINT;
        ALTER TABLE boxes ADD COLUMN bin_hour INTEGER;
        ALTER TABLE boxes ADD COLUMN bins_rev INTEGER;
        """ + ";\n".join(fill_bins_sql()) + ";",
    ),
]

LATEST = MIGRATIONS[-1][0]
