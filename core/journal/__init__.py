"""The journal: the store (the only code that writes SQL), event types, the fold."""
