"""Training: the only package allowed to import torch (lazily, inside its modules)."""
