"""The Qt-free core: domain, storage, ingest, inference, training, export and synthesis.

Nothing under this package may import PySide6 (tests/core/test_architecture.py enforces it).
"""
