"""`python -m edgetune.cli`: the same command as `edgetune`."""

from edgetune.cli import main

main()
