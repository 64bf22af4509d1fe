"""Training LightGBM here or on a Dask cluster, the row split, Optuna search and
reproducing a run."""
