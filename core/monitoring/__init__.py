"""Drift of new data and served traffic against a model's reference, live performance
from late labels, and HTML reports."""
