"""The engine: every capability as a plain Python API, one subpackage each (see
docs/architecture.md); the CLI in `cli/` and the UI in `mlyard.tui` are faces over it."""
