"""Screens of the cockpit: home, launch form, run dashboard and war room (one base,
run_screen), approval, history, help, and the small dialogs (confirm, prompts). They reach
the app only through the Protocol in host.py."""
