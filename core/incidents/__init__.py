"""The incident domain: the incident folded from a run, Alertmanager intake, postmortems."""
