"""What a trial is judged by: the metrics it records and the names a sweep may use for them
(table.py), and the objectives, constraints and protocols a sweep builds from those names
(objectives.py)."""
