"""What runs without a person: watched folders, schedules, the job history, the pipeline
and the daemon that drives them."""
