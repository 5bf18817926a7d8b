"""The runner: stages, the step DAG, retries, timeouts, gates, approvals, signals, resume."""
