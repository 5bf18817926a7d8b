"""Headless front ends: plain and live renderers, CI annotations, `show` text."""
