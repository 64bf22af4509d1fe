"""The registry: model versions and aliases, promotion gates, loading a model exactly as
trained, its drift reference, and bundles that move models between projects."""
