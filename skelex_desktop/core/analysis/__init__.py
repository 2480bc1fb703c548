"""Analysing images: one pipeline from error map to region-guided task-head predictions."""
