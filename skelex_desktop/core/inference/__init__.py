"""SKELEX inference: model packages, ONNX sessions, preprocessing, error maps, hotspots.

onnxruntime is imported lazily by the modules of this package, never at package import.
"""
