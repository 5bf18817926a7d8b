"""Policies the actions apply: token budgets and circuit breakers."""
