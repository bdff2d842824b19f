"""The distillation loss a student is trained with, checked against its formula by hand."""

from __future__ import annotations

import pytest
import torch

from edgetune.training.loop import distillation_loss


def test_distillation_loss_is_the_stated_mix():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    labels = torch.randint(0, 10, (16,), generator=g)
    ce = torch.nn.functional.cross_entropy(student, labels)
    assert torch.allclose(distillation_loss(student, teacher, labels, 0.0, 4.0), ce)
    assert float(distillation_loss(student, student, labels, 1.0, 4.0)) == pytest.approx(0.0, abs=1e-6)
    t = 3.0  # alpha = 1: T^2 KL(softmax(teacher/T) || softmax(student/T)), by hand
    p = torch.softmax(teacher / t, 1)
    kl = (p * (torch.log(p) - torch.log_softmax(student / t, 1))).sum(1).mean()
    assert torch.allclose(distillation_loss(student, teacher, labels, 1.0, t), t * t * kl, atol=1e-6)
