"""Widgets of the cockpit, and the journal tail that feeds them."""
