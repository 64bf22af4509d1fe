"""`python -m mlyard`: the same command as the `mlyard` script."""

from mlyard.core.cli.main import main

main()
