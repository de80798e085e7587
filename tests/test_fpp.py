"""FPP: packed runs equal lone cells, the buffer write-back, which loss reaches what, the LM."""

import pytest
import torch

from lmrescore.lm.cells import CELLS
from lmrescore.online.ensemble import Ensemble
from lmrescore.online.fpp import FPPConfig, FPPLearner, fpp_losses, propagate, start_states


def lone_cell(model: Ensemble, cell: str, run: int):
    """A plain Cell holding run ``run``'s weights of the packed ensemble."""
    g, h = model.cell.gates, model.hidden_size
    lone = CELLS[cell](model.input_size, h)
    with torch.no_grad():
        lone.input.weight.copy_(model.cell.input.weight[run].T)
        lone.input.bias.copy_(model.cell.input.bias.view(g, -1, h)[:, run].reshape(-1))
        lone.recurrent.weight.copy_(model.cell.recurrent.weight[run].T)
        if cell == "gru":
            lone.recurrent_bias.copy_(model.cell.recurrent_bias.view(g, -1, h)[:, run].reshape(-1))
    return lone


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_each_packed_run_is_a_lone_cell(cell: str) -> None:
    model = Ensemble(cell, runs=3, input_size=5, hidden_size=4, classes=2, seed=0)
    x = torch.randn(6, 3, 5)  # (B, R, E): each run its own input
    state = model.split(torch.randn(6, model.cell.state_size))  # (B, R, S)
    out = model.split(model.step(model.join(state), x))
    for r in range(3):
        lone = lone_cell(model, cell, r)
        expected = lone.step(state[:, r], lone.input_proj(x[:, r]))
        torch.testing.assert_close(out[:, r], expected)
    assert torch.equal(model.split(model.join(state)), state)


STARTS = (0, 7)  # the stream's reset points


def filled_learner(state_lr: float, target_only: bool = False, window: int = 1) -> FPPLearner:
    """A learner that has observed 12 steps of a stream, reset at STARTS (no updates yet)."""
    torch.manual_seed(0)
    model = Ensemble("rnn", runs=2, input_size=2, hidden_size=3, classes=2, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    config = FPPConfig(buffer=10, updates=1, batch=4, state_lr=state_lr, target_only=target_only,
                       window=window)
    learner = FPPLearner(model, opt, config, seed=3)
    for t in range(12):
        bit = int(t % 3 == 2)
        with torch.no_grad():
            learner.state = model.step(learner.state * (t not in STARTS),
                                       torch.eye(2)[bit].expand(2, 2))
        learner.buffer.add(model.split(learner.state), torch.eye(2)[bit].expand(2, 2),
                           torch.tensor([1 - bit, 1 - bit]), t in STARTS)
    return learner


def next_sample(learner: FPPLearner) -> torch.Tensor:
    """The transition times the learner's next update will sample."""
    g = torch.Generator()
    g.set_state(learner.generator.get_state())
    return learner.buffer.sample(learner.config.batch, g, learner.config.window)


def test_update_writes_the_recomputed_next_state_back() -> None:
    learner = filled_learner(state_lr=0.0)
    t = next_sample(learner)
    before = learner.buffer.states.clone()
    tr = learner.buffer.gather(t)  # as sampled (a write may change a later-sampled start)
    learner.update()
    s_prev = start_states(tr)
    _, s_next = propagate(learner.model, tr, s_prev)  # with the updated weights
    cap = learner.buffer.capacity
    runs = torch.arange(2)
    torch.testing.assert_close(learner.buffer.states[(t + 1) % cap, runs], s_next)
    changed = (learner.buffer.states != before).any(-1)  # (capacity, R)
    written = torch.zeros_like(changed)
    written[(t + 1) % cap, runs] = True
    assert changed.any() and not (changed & ~written).any()  # nothing else was touched


@pytest.mark.parametrize("window", [1, 3])
def test_state_gradient_step_moves_the_start_state(window: int) -> None:
    learner = filled_learner(state_lr=0.3, window=window)
    t = next_sample(learner)
    tr = learner.buffer.gather(t, window)
    first = tr["starts"][0, ..., None]
    s_prev = start_states(tr).requires_grad_(True)
    target_loss, state_loss = fpp_losses(learner.model, tr, s_prev)
    (grad,) = torch.autograd.grad(target_loss + state_loss, s_prev)
    learner.update()
    moved = learner.buffer.states[(t - window) % learner.buffer.capacity, torch.arange(2)]
    expected = torch.where(first, tr["s_prev"], s_prev.detach() - 0.3 * grad)
    # duplicates within a run keep one of their writes; check the samples drawn once
    checked = 0
    for b in range(t.shape[0]):
        for r in range(2):
            if (t[:, r] == t[b, r]).sum() == 1 and ((t[:, r] + 1) != t[b, r] - window).all():
                torch.testing.assert_close(moved[b, r], expected[b, r])
                checked += 1
    assert checked > 0 and (grad != 0).any()


@pytest.mark.parametrize("window", [1, 3])
def test_a_window_from_the_stored_start_state_reproduces_the_stream(window: int) -> None:
    """With the weights that wrote the buffer, every window recomputes the stored states."""
    learner = filled_learner(state_lr=0.0, window=window)
    buf, model = learner.buffer, learner.model
    n = buf.num_transitions(window)
    assert n == min(12 - window, 10)  # times t with s[t-W] (or the start) and s[t+1] stored
    t = (buf.now - n + torch.arange(n))[:, None].expand(n, 2)
    tr = buf.gather(t, window)
    s_prev = start_states(tr)
    logits, s_next = propagate(model, tr, s_prev)
    torch.testing.assert_close(s_next, tr["s_next"])
    s_t = buf.states[t % buf.capacity, torch.arange(2)]
    torch.testing.assert_close(logits, model.logits(model.join(s_t)))


def test_a_start_inside_the_window_cuts_the_start_state_off() -> None:
    learner = filled_learner(state_lr=0.0, window=3)
    t = torch.tensor([[10, 8]])  # run 0: steps 8..10 after s[7]; run 1: steps 6..8, reset at 7
    tr = learner.buffer.gather(t, 3)
    s_prev = tr["s_prev"].clone().requires_grad_(True)
    target_loss, _ = fpp_losses(learner.model, tr, s_prev)
    (grad,) = torch.autograd.grad(target_loss, s_prev)
    assert grad[0, 0].abs().sum() > 0  # the target loss reaches 3 steps back
    assert torch.equal(grad[0, 1], torch.zeros(3))


def test_state_loss_trains_the_cell_but_not_the_readout() -> None:
    learner = filled_learner(state_lr=0.0)
    tr = learner.buffer.gather(next_sample(learner))
    s_prev = start_states(tr)
    learner.buffer.states.add_(0.3)  # stored next states now disagree with the cell
    tr["s_next"] = tr["s_next"] + 0.3
    model = learner.model
    _, state_loss = fpp_losses(model, tr, s_prev)
    grads = torch.autograd.grad(state_loss, [model.cell.recurrent.weight, model.readout.weight],
                                allow_unused=True)
    assert grads[0].abs().sum() > 0  # the state loss reaches W
    assert grads[1] is None  # and never the output weights


@pytest.mark.parametrize("target_only", [False, True])
def test_target_only_ablation_drops_the_state_loss(target_only: bool) -> None:
    learner = filled_learner(state_lr=0.0, target_only=target_only)
    learner.buffer.states.add_(0.3)  # a nonzero state loss
    model = learner.model
    tr = learner.buffer.gather(next_sample(learner))
    s_prev = start_states(tr)
    params = list(model.parameters())
    target_loss, state_loss = fpp_losses(model, tr, s_prev)
    g_target = torch.autograd.grad(target_loss, params, allow_unused=True, retain_graph=True)
    g_state = torch.autograd.grad(state_loss, params, allow_unused=True)
    before = [p.detach().clone() for p in params]
    learner.update()  # SGD, lr 0.5: p' = p - 0.5 * grad
    for p, p0, gt, gs in zip(params, before, g_target, g_state):
        grad = (gt if gt is not None else 0) + (0 if target_only or gs is None else gs)
        torch.testing.assert_close(p.detach(), p0 - 0.5 * grad)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="updates"):
        FPPConfig(updates=0)
    with pytest.raises(ValueError, match="window"):
        FPPConfig(window=0)
    with pytest.raises(ValueError, match="state_lr"):
        FPPConfig(state_lr=-1)


def test_streams_lm_step_is_the_exact_recurrence() -> None:
    from lmrescore.online.fpp_lm import StreamsLM
    from lmrescore.lm.model import RNNLM, ModelConfig

    torch.manual_seed(0)
    model = RNNLM(ModelConfig(cell="lstm", vocab_size=11, hidden_dim=6, num_layers=2))
    streams = StreamsLM(model, streams=3)
    tokens = torch.randint(0, 11, (3, 4))
    state = streams.zero_state()
    for t in range(4):
        state = streams.step(state, tokens[:, t])
    logits, finals = model(tokens, order=None)
    torch.testing.assert_close(streams.split(state), torch.cat(finals, dim=-1))
    torch.testing.assert_close(streams.logits(state), logits[:, -1])


def test_trainer_fpp_learns_and_resumes(tmp_path) -> None:
    from lmrescore.lm.config import ExperimentConfig
    from lmrescore.training.trainer import Trainer
    from toy_corpus import write_toy_corpus

    corpus = write_toy_corpus(tmp_path / "toy", train=150, heldout=20)
    config = ExperimentConfig.from_dict({
        "model": {"cell": "gru", "hidden_dim": 16},
        "train": {"method": "fpp", "batching": "stream", "batch_size": 8, "bptt_len": 10,
                  "optimizer": "adam", "lr": 0.01, "epochs": 1, "save_every": 3,
                  "fpp": {"buffer": 50, "updates": 1}}})
    trainer = Trainer(config, corpus, tmp_path / "exp")
    before = trainer.evaluate("valid").ppl
    results = trainer.run()
    assert results["valid_ppl"] < 0.6 * before, (before, results)

    # a fresh Trainer resumes the mid-epoch checkpoint (buffer included) to the same next step
    a = Trainer(config, corpus, tmp_path / "a")
    batches = a.batches(0)
    for b in batches[:3]:
        a.step(b)
        a.state.step_in_epoch += 1
    a.save()
    b = Trainer(config, corpus, tmp_path / "a")
    a.step(batches[3])
    b.step(batches[3])
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name
