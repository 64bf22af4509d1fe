"""Scoring: the HTTP server, request parsing, batch scoring (here or on a cluster), the
prediction log and the UI's supervisor of a server process."""
