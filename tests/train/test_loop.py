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


def test_a_resumed_run_goes_on_where_its_data_left_off(tmp_path):
    seen = []

    def run(total):
        torch.manual_seed(0)
        model = torch.nn.Linear(1, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        accelerator = start(tmp_path, 1, "no", 0, None)
        loader = accelerator.prepare(torch.utils.data.DataLoader(torch.arange(10.0).unsqueeze(1), batch_size=2))

        def loss_fn(model, batch):
            seen.append(batch[:, 0].tolist())
            return model(batch).sum()

        train(accelerator, model, optimizer, scheduler, loader, loss_fn, total=total, out=tmp_path, save_every=3,
              desc="test")

    run(3)
    run(7)  # resumes at step 3: batches 3 and 4 of the first epoch, then the next epoch
    assert seen == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [0, 1], [2, 3]]
