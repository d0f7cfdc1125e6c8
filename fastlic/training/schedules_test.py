import pytest
import torch

from fastlic.training.schedules import lr_factor, make_scheduler


def test_multistep():
    f = lr_factor("multistep", steps=100, milestones=[50, 80], gamma=0.1)
    assert [f(0), f(49), f(50), f(79), f(80)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])


def test_cosine_with_warmup():
    f = lr_factor("cosine", steps=110, warmup=10, min_factor=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1)
    values = [f(s) for s in range(10, 111)]
    assert all(b <= a for a, b in zip(values, values[1:]))


def test_scheduler_state_restores_the_rate():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=1.0)
    s = make_scheduler(opt, "multistep", steps=10, milestones=[3])
    for _ in range(4):
        opt.step()
        s.step()
    opt2 = torch.optim.Adam([p], lr=1.0)
    s2 = make_scheduler(opt2, "multistep", steps=10, milestones=[3])
    s2.load_state_dict(s.state_dict())
    assert s2.get_last_lr() == s.get_last_lr() == [pytest.approx(0.1)]
    with pytest.raises(ValueError):
        lr_factor("linear", steps=1)
