"""SKELEX Desktop: offline review of musculoskeletal radiographs with the SKELEX model.

Importing this package is cheap: torch, onnxruntime and PySide6 are imported only by the
modules that need them, when they are used.
"""

__version__ = "0.1.0"
