"""Qt item models adapting core queries (worklist, labels)."""
