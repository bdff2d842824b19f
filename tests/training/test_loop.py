"""One epoch (`training.loop`): a teacher asked once per image teaches what per-batch teaching
does, and the fast arithmetic is taken only where it is fast."""

from __future__ import annotations

import pytest
import torch

from edgetune.data import load_dataset
from edgetune.models import build_model
from edgetune.training.loop import Training


def test_without_augmentation_the_teacher_is_asked_once_per_image_and_teaches_the_same(tiny_fmnist):
    """`finetune.augment: false` shows each image as it is every epoch, so the teacher's logits
    can be computed once: the student must learn exactly what per-batch teaching gives it, for
    half the teacher's work over two epochs (and a flip left on would break the equality)."""
    from edgetune.training.loop import Teacher, logits_of, train_epoch

    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    torch.manual_seed(1)
    teacher = build_model("resnet20", num_classes=10, in_channels=1).eval()
    asked = []
    teacher.register_forward_hook(lambda module, inputs, output: asked.append(len(inputs[0])))

    def learn(logits=None):
        torch.manual_seed(0)
        student = build_model("resnet20", num_classes=10, in_channels=1)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(0)
        taught = Training(batch_size=64, augmented=False, teacher=Teacher(teacher, 0.7, 4.0, logits=logits))
        for _ in range(2):
            train_epoch(student, data, optimizer, taught, generator=generator)
        return student

    per_batch = learn()
    assert sum(asked) == 2 * len(data.train)
    asked.clear()
    once = learn(logits=logits_of(teacher, data, data.train))
    assert sum(asked) == len(data.train)
    for a, b in zip(per_batch.state_dict().values(), once.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4)
    with pytest.raises(ValueError, match="augmented"):
        train_epoch(once, data, torch.optim.SGD(once.parameters(), lr=0.1),
                    Training(batch_size=64, teacher=Teacher(teacher, 0.7, 4.0, logits=logits_of(teacher, data, data.train))),
                    generator=torch.Generator())


def test_the_fast_path_is_taken_only_where_it_is_fast_and_leaves_the_network_as_it_was(tiny_fmnist):
    """`auto` autocasts to bf16 only where the device computes it natively (emulated bf16 ran ten
    times slower than fp32 on an AVX2 CPU), trains the CPU's convolutions in channels_last, and
    hands back a network in the usual layout (exported, hashed and saved as any other)."""
    from edgetune.training.loop import bf16_native, fast_path, train_epoch

    assert fast_path("cpu", "fp32") == (False, False)
    assert fast_path("cpu", "bf16") == (True, True)
    assert fast_path("cpu", "auto") == (bf16_native("cpu"), True)
    assert fast_path("meta", "auto") == (False, False)
    data = load_dataset("fashion-mnist", tiny_fmnist, val_size=40)
    trained = {}
    for precision in ("fp32", "auto"):
        torch.manual_seed(0)
        model = build_model("resnet20", num_classes=10, in_channels=1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        one_step = Training(batch_size=64, augmented=False, precision=precision, split=data.train.subset(64))
        train_epoch(model, data, optimizer, one_step, generator=torch.Generator().manual_seed(0))
        assert all(p.is_contiguous() for p in model.parameters())
        trained[precision] = model
    if not bf16_native("cpu"):  # channels_last alone: the same arithmetic up to summation order
        for a, b in zip(trained["fp32"].parameters(), trained["auto"].parameters(), strict=True):
            assert torch.allclose(a, b, atol=1e-4)
