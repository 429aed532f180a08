"""The shared training loop: gradient clipping, resuming, and checkpoints that hold what training changes."""

import pytest
import torch
from safetensors import safe_open

from llmga.train import run_state
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


def _half_frozen_run(out, total, save_every=1):
    """A frozen layer under a trained one, trained to ``total`` steps (resuming from ``out``); the model."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    model[0].requires_grad_(False)
    optimizer = torch.optim.Adam(model[1].parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    accelerator = start(out, 1, "no", 0, None)
    data = torch.arange(1.0, 9.0).repeat_interleave(3).reshape(8, 3)
    model, optimizer, scheduler, batches = accelerator.prepare(model, optimizer, scheduler,
                                                               torch.utils.data.DataLoader(data, batch_size=2))
    train(accelerator, model, optimizer, scheduler, batches, lambda m, x: m(x).pow(2).sum(),
          total=total, out=out, save_every=save_every, desc="test")
    return model


def test_a_checkpoint_holds_the_trained_weights_and_resumes_as_if_never_stopped(tmp_path):
    _half_frozen_run(tmp_path / "stopped", 2)
    with safe_open(str(tmp_path / "stopped/checkpoints/step-0000002/model.safetensors"), "pt") as file:
        assert set(file.keys()) == {"1.weight", "1.bias"}  # not the frozen layer's
    resumed = _half_frozen_run(tmp_path / "stopped", 4)
    straight = _half_frozen_run(tmp_path / "straight", 4)
    for a, b in zip(resumed.parameters(), straight.parameters()):
        assert torch.equal(a, b)


def test_a_checkpoint_cut_off_while_saving_is_not_resumed_from(tmp_path, monkeypatch):
    _half_frozen_run(tmp_path, 2)
    from accelerate import Accelerator

    def out_of_disk(self, folder, **_):
        (tmp_path / "checkpoints" / ".step-0000003.partial").mkdir(exist_ok=True)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Accelerator, "save_state", out_of_disk)
    with pytest.raises(OSError):
        _half_frozen_run(tmp_path, 3)
    monkeypatch.undo()
    assert run_state.latest_step(tmp_path) == 2
    _half_frozen_run(tmp_path, 3)  # resumes from step 2, and the cut-off folder gives way to the whole one
    assert [c.name for c in run_state.checkpoints(tmp_path)] == ["step-0000001", "step-0000002", "step-0000003"]
    assert not (tmp_path / "checkpoints" / ".step-0000003.partial").exists()


def test_a_checkpoint_of_another_model_is_refused_by_name(tmp_path):
    _half_frozen_run(tmp_path, 1)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    accelerator = start(tmp_path, 1, "no", 0, None)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    with pytest.raises(ValueError, match="does not fit this run's model: 2 trained weights missing"):
        run_state.resume(accelerator, tmp_path)


def test_under_deepspeed_a_checkpoint_loads_without_the_strict_flag_its_loader_rejects(tmp_path, monkeypatch):
    from accelerate import Accelerator
    from accelerate.utils import DistributedType

    _half_frozen_run(tmp_path, 1)
    asked = []
    monkeypatch.setattr(Accelerator, "distributed_type", property(lambda self: DistributedType.DEEPSPEED))
    monkeypatch.setattr(Accelerator, "load_state", lambda self, folder, **kwargs: asked.append(kwargs))
    assert run_state.resume(start(tmp_path, 1, "no", 0, None), tmp_path) == 1 and asked == [{}]
