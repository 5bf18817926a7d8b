"""Screens of the cockpit: home, launch form, run dashboard, approval, history, help."""
