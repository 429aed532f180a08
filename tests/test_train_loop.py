"""The shared training loop: gradient clipping covers every trained model when asked."""

import torch

from llmga.train.loop import start, train


def _one_step(tmp_path, clip_both: bool) -> float:
    """How far a second trained module moves in one SGD step under a huge loss."""
    torch.manual_seed(0)
    first, second = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    before = torch.cat([p.detach().flatten().clone() for p in second.parameters()])
    params = [*first.parameters(), *second.parameters()]
    optimizer = torch.optim.SGD(params, lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    accelerator = start(tmp_path, 1, "no", 0, None)
    batches = [torch.ones(2, 4)]

    def loss_fn(model, x):
        return 1e6 * (model(x) + second(x)).sum()

    train(accelerator, first, optimizer, scheduler, batches, loss_fn, total=1, out=tmp_path, save_every=10,
          desc="test", clipped=params if clip_both else None)
    after = torch.cat([p.detach().flatten() for p in second.parameters()])
    return float((after - before).norm())


def test_clipping_covers_the_parameters_named_not_only_the_models(tmp_path):
    assert _one_step(tmp_path / "both", clip_both=True) <= 1.0 + 1e-5
    assert _one_step(tmp_path / "model", clip_both=False) > 1e3
