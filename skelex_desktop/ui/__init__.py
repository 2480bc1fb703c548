"""The Qt (PySide6) user interface: thin adapters over core operations, no business logic."""
