"""Datasets held in memory as uint8 tensors, split into train / validation / test.

The search only ever sees train and validation; test is kept for the final report, so a
search cannot overfit the number it is judged by.
"""

from edgetune.data.splits import DataSplits, ImageSplit, load_dataset

__all__ = ["DataSplits", "ImageSplit", "load_dataset"]
