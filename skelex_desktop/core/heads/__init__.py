"""Label-efficient task heads on frozen embeddings: datasets from labels, patient-grouped
cross-validation splits, metrics and calibration, head files and model versions.

Plain numpy and SQLAlchemy; the torch training itself lives in `core/training/head_fit.py`.
"""
