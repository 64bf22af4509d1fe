"""`python -m mlyard`: the same command as the `mlyard` script (and named so in help)."""

from mlyard.core.cli.main import main

main(prog_name="mlyard")
