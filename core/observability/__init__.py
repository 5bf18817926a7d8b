"""What a run tells the outside: metrics, traces, CI reports, redaction."""
