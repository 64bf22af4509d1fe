"""The `mlyard` command: a thin face over the core functions, the only place (with the
UI) that imports click and rich."""
