"""Dock and side panels of the main window."""
