"""Sensitivity analysis (run.py), where pruning pays and recipe suggestion (suggest.py), and
their figures (figures.py)."""
