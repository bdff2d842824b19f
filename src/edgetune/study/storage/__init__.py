"""Where a study is kept: the run directory and every file name in it (rundir), its protection
against being overwritten (protect), and Optuna's storages (backends: SQLite, PostgreSQL, the
Redis journal) with the patience that rides out a server's restart."""
