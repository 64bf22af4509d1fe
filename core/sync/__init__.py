"""`mlyard sync`: runs, models and dataset versions between two workspaces, here or over
ssh, by content hash."""
