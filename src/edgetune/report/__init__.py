"""Reports from any study, offline: analysis functions that return tables (analysis.py),
renderers that turn them into HTML, PNG, CSV or Markdown (one module each), and the live
progress table a running study prints (progress.py)."""
