"""Runs: the tracking API that records them, the buffer behind it, and the queries that
list, show and compare them."""
