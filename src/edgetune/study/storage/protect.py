"""A run directory protects its finished trials: nothing a run or a reader does may lose one.

The study database and the trial folders must agree. When they do not (the database emptied,
truncated, replaced by another study's, or an older copy restored), starting a study in it would
number new trials from 0 and write over folders that hold finished work, and a reader opening
an empty file would write Optuna's schema into it, making the next run take it for a valid,
empty study. So: the database is checked before anything opens it, one run directory holds one
study, and a trial folder already on disk is moved aside, never written over.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from edgetune.errors import EdgetuneError
from edgetune.study.storage.rundir import RunDir

SQLITE_HEADER = b"SQLite format 3\x00"


def database_problem(path: Path) -> str | None:
    """Why `path` cannot be a study database, or None when it reads as one (or does not exist).
    Read-only: nothing is written into the file, not even a schema."""
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not header:
        return "is empty (0 bytes)"
    if header != SQLITE_HEADER:
        return "is not an SQLite database"
    try:
        with closing(_read_only(path)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        return f"cannot be read as a database ({exc})"
    if "studies" not in tables:
        return "holds no Optuna study"
    return None


def _read_only(path: Path) -> sqlite3.Connection:
    """An SQLite connection that cannot write (the path quoted: a `?` or `#` in it would end it)."""
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)


def study_names(path: Path) -> list[str]:
    """The studies a (readable) database holds, read without writing."""
    with closing(_read_only(path)) as db:
        return [row[0] for row in db.execute("SELECT study_name FROM studies ORDER BY study_id")]


def finished_on_disk(paths: RunDir) -> list[int]:
    """Trial numbers whose folder holds a finished trial's figures."""
    root = paths.root / "trials"
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit() and (p / "metrics.json").is_file())


def recovery(paths: RunDir) -> str:
    """What a user can do about a damaged or missing study database: every error that names one
    (a run refusing it, a reader unable to open it) says it in these words."""
    if paths.database_backup.is_file() and database_problem(paths.database_backup) is None:
        return (f"{paths.database_backup.name} beside it is the copy taken after the last completed trial: "
                f"move it over {paths.database.name} to resume from there, or give a new --run-dir")
    return "no readable copy of it was kept: give a new --run-dir"


def check_before_opening(paths: RunDir, name: str) -> None:
    """Refuse to open the run directory's own database when that would lose finished trials:
    a missing, empty or unreadable database beside finished trials, or one holding another
    study (one run directory holds one study)."""
    done = finished_on_disk(paths)
    problem = "is missing" if not paths.database.exists() else database_problem(paths.database)
    if problem is not None and (done or paths.trials_csv.is_file()):
        held = f"{len(done)} finished trial(s) in {paths.root / 'trials'}" if done else f"{paths.trials_csv}"
        raise EdgetuneError(f"{paths.database} {problem}, but the run directory holds {held}: a study started here "
                            f"would write over them; {recovery(paths)}")
    if problem is not None:
        if paths.database.exists():
            raise EdgetuneError(f"{paths.database} {problem}; delete it to start afresh. Or: {recovery(paths)}")
        return
    others = [n for n in study_names(paths.database) if n != name]
    if others:
        raise EdgetuneError(f"{paths.root} holds study {others[0]!r}, not {name!r}: one run directory holds one "
                            f"study; give --run-dir for {name!r}, or --name {others[0]} to resume that one")


def set_aside(folder: Path) -> Path | None:
    """A trial folder already on disk (a restored, older database numbers new trials from where
    it stopped) moved aside under a new name; where it went, or None when there was none."""
    if not folder.exists():
        return None
    aside = folder.with_name(f"{folder.name}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 0
    while aside.exists():
        n += 1
        aside = aside.with_name(f"{folder.name}.set-aside-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    folder.rename(aside)
    return aside
