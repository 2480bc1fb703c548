"""Modal dialogs (import, training, export)."""
