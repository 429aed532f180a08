"""The shared training loop: gradient clipping covers every parameter the optimizer steps."""

import torch

from llmga.train.loop import start, train


def test_clipping_covers_every_optimized_parameter_not_only_the_models(tmp_path):
    torch.manual_seed(0)
    first, second = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    before = torch.cat([p.detach().flatten().clone() for p in second.parameters()])
    optimizer = torch.optim.SGD([*first.parameters(), *second.parameters()], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    batches = [torch.ones(2, 4)]

    def loss_fn(model, x):
        return 1e6 * (model(x) + second(x)).sum()

    unclipped = torch.autograd.grad(loss_fn(first, batches[0]), list(second.parameters()))
    assert torch.cat([g.flatten() for g in unclipped]).norm() > 1e3  # an unclipped step would move it this far
    train(start(tmp_path, 1, "no", 0, None), first, optimizer, scheduler, batches, loss_fn, total=1, out=tmp_path,
          save_every=10, desc="test")
    after = torch.cat([p.detach().flatten() for p in second.parameters()])
    assert (after - before).norm() <= 1.0 + 1e-5
