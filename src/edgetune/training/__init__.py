"""Training in PyTorch: the loop every fine-tuning, final training and baseline shares (one
epoch, evaluation, distillation from a teacher, bf16 where the CPU has it: loop.py), and a whole
baseline's training with resumable state (baseline.py, `edgetune train`)."""
