"""The catalog (DuckDB, only here), its migrations and lock, the spool and the object
store."""
