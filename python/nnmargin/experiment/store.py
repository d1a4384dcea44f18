"""The results of an experiment run: one SQLite file (``results.sqlite``) in the output folder.

A *unit* is one (pair, method, split, norm): its whole eps sweep is one row, inserted in its own
transaction the moment it finishes. SQLite commits are atomic and durable, so a run killed at any
instant leaves every finished unit intact and no partial one; the primary key makes a duplicate
impossible, and a re-run skips the units already there. Training runs are rows of their own
(timing, history); the weights are checkpoint files next to the database (see :mod:`.runner`).

Counts are stored as integers (``n``, ``n_clean``, ``n_robust`` per eps) so accuracies are exact
fractions; ``kind`` says what a robust number means: "certified" (a sound lower bound), "exact", or
"attack" (an upper bound found by APGD).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Dict, List, Optional

from .._errors import InputError
from .config import Settings

DB_NAME = "results.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    dataset TEXT NOT NULL, pair TEXT NOT NULL, method TEXT NOT NULL, split TEXT NOT NULL,
    norm TEXT NOT NULL,
    kind TEXT NOT NULL,            -- certified | exact | attack
    detail TEXT NOT NULL,          -- how: e.g. 'bound=margin' or 'APGD-CE 100 iters x 1'
    n INTEGER NOT NULL,            -- points evaluated
    n_clean INTEGER NOT NULL,      -- of which classified correctly
    eps TEXT NOT NULL,             -- JSON list, ascending
    n_robust TEXT NOT NULL,        -- JSON list of counts, one per eps
    seconds REAL NOT NULL,         -- wall time of this unit (certify or attack sweep)
    extra TEXT NOT NULL,           -- JSON: per-eps seconds, radius statistics, ...
    finished_at REAL NOT NULL,     -- unix time
    PRIMARY KEY (dataset, pair, method, split, norm)
);
CREATE TABLE IF NOT EXISTS trainings (
    dataset TEXT NOT NULL, pair TEXT NOT NULL, method TEXT NOT NULL,
    seconds REAL NOT NULL, n_train INTEGER NOT NULL, config TEXT NOT NULL, history TEXT NOT NULL,
    checkpoint TEXT NOT NULL, finished_at REAL NOT NULL,
    PRIMARY KEY (dataset, pair, method)
);
"""


class SettingsMismatch(InputError):
    """The output folder holds results made with other settings (use another folder or the same options)."""


class ResultStore:
    """The results database of one output folder (created on first use).

    Use as a context manager or call :meth:`close`. All writes commit immediately.
    """

    def __init__(self, out_dir, create: bool = True):
        self.out_dir = Path(out_dir)
        path = self.out_dir / DB_NAME
        if not create and not path.is_file():
            raise InputError(f"{path}: no experiment results here")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; each write below is its own explicit transaction.
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ settings

    def settings(self) -> Optional[Settings]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        return Settings.from_dict(json.loads(row[0])) if row else None

    def bind_settings(self, settings: Settings) -> None:
        """Record ``settings`` for a new folder, or check they equal the recorded ones.

        Raises :class:`SettingsMismatch` listing the differences: results made under different
        settings must not be mixed (use another output folder).
        """
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")  # no other process can bind in between
            stored = self.settings()
            if stored is None:
                self.db.execute("INSERT INTO meta VALUES ('settings', ?)", (json.dumps(settings.to_dict()),))
                self.db.execute("INSERT INTO meta VALUES ('created_at', ?)", (repr(time.time()),))
                return
        if stored.to_dict() != settings.to_dict():
            raise SettingsMismatch(
                f"{self.out_dir} holds results made with other settings ("
                + "; ".join(stored.differences(settings))
                + "); use another output folder, or the same options as before")

    # ------------------------------------------------------------------ units

    def finished(self) -> set:
        """{(dataset, pair, method, split, norm)} already stored."""
        return set(self.db.execute("SELECT dataset, pair, method, split, norm FROM units"))

    def add_unit(self, *, dataset: str, pair: str, method: str, split: str, norm: str, kind: str,
                 detail: str, n: int, n_clean: int, eps, n_robust, seconds: float,
                 extra: Optional[dict] = None) -> None:
        """Insert one finished unit (one transaction). A duplicate raises ``sqlite3.IntegrityError``."""
        if kind not in ("certified", "exact", "attack"):
            raise ValueError(f"kind must be certified, exact or attack, got {kind!r}")
        eps, n_robust = [float(e) for e in eps], [int(c) for c in n_robust]
        if len(eps) != len(n_robust) or any(not 0 <= c <= n_clean for c in n_robust) or not 0 <= n_clean <= n:
            raise ValueError("inconsistent counts: need 0 <= n_robust <= n_clean <= n, one count per eps")
        with self.db:
            self.db.execute(
                "INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (dataset, pair, method, split, norm, kind, detail, int(n), int(n_clean), json.dumps(eps),
                 json.dumps(n_robust), float(seconds), json.dumps(extra or {}), time.time()))

    def units(self) -> List[Dict]:
        """Every stored unit as a dict, with ``clean_acc`` and ``robust_acc`` (list) added."""
        cursor = self.db.execute("SELECT * FROM units ORDER BY dataset, pair, method, split, norm")
        names = [c[0] for c in cursor.description]
        out = []
        for row in cursor:
            unit = dict(zip(names, row))
            for key in ("eps", "n_robust", "extra"):
                unit[key] = json.loads(unit[key])
            n = unit["n"]
            unit["clean_acc"] = unit["n_clean"] / n if n else float("nan")
            unit["robust_acc"] = [c / n if n else float("nan") for c in unit["n_robust"]]
            out.append(unit)
        return out

    # ------------------------------------------------------------------ trainings

    def add_training(self, *, dataset: str, pair: str, method: str, seconds: float, n_train: int,
                     config: dict, history: list, checkpoint: str) -> None:
        """Record a finished training run (replacing an earlier record of the same model)."""
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO trainings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (dataset, pair, method, float(seconds), int(n_train),
                             json.dumps(config, default=str), json.dumps(history, default=str),
                             checkpoint, time.time()))

    def trainings(self) -> List[Dict]:
        cursor = self.db.execute("SELECT * FROM trainings ORDER BY dataset, pair, method")
        names = [c[0] for c in cursor.description]
        out = []
        for row in cursor:
            rec = dict(zip(names, row))
            rec["config"], rec["history"] = json.loads(rec["config"]), json.loads(rec["history"])
            out.append(rec)
        return out
