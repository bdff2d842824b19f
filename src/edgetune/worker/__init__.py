"""The device side of distributed benchmarking: validated messages in, metrics out, no PyTorch."""
