"""Online T-BPTT: gradients reach back exactly T steps, and the update matches a hand-built loss."""

import pytest
import torch
import torch.nn.functional as F

from lmrescore.online.ensemble import Ensemble
from lmrescore.online.tbptt import TBPTTLearner


def stream(steps: int, runs: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Random one-hot observations (leaves that record gradients) and random targets."""
    g = torch.Generator().manual_seed(7)
    bits = torch.randint(0, 2, (steps, runs), generator=g)
    obs = [torch.eye(2)[b].requires_grad_(True) for b in bits]
    targets = [t for t in torch.randint(0, 2, (steps, runs), generator=g)]
    return obs, targets


def learner(truncation: int, lr: float = 0.0) -> TBPTTLearner:
    model = Ensemble("rnn", runs=2, input_size=2, hidden_size=3, classes=2, seed=0)
    return TBPTTLearner(model, torch.optim.SGD(model.parameters(), lr=lr), truncation)


@pytest.mark.parametrize("truncation", [1, 2, 4])
def test_gradient_reaches_exactly_the_last_T_observations(truncation: int) -> None:
    obs, targets = stream(10, 2)
    tb = learner(truncation, lr=0.1)
    for t in range(9):
        tb.observe(obs[t], targets[t], t == 0)
    for o in obs:
        o.grad = None
    tb.observe(obs[9], targets[9], False)  # the update at t = 9 scores y[9] only
    reached = [o.grad is not None and bool(o.grad.abs().sum() > 0) for o in obs]
    assert reached == [t > 9 - truncation for t in range(10)]


def test_reset_inside_the_window_cuts_the_gradient() -> None:
    obs, targets = stream(6, 2)
    tb = learner(4)
    for t in range(5):
        tb.observe(obs[t], targets[t], t == 0)
    for o in obs:
        o.grad = None
    tb.observe(obs[5], targets[5], True)  # the state before t = 5 is reset
    assert [o.grad is not None for o in obs] == [False] * 5 + [True]


@pytest.mark.parametrize("truncation", [1, 3])
def test_update_gradient_equals_the_truncated_loss_from_a_detached_state(truncation: int) -> None:
    obs, targets = stream(8, 2)
    tb = learner(truncation)  # lr 0: the weights stay those of the reference
    m = tb.model
    with torch.no_grad():  # the state before the window, by the plain recurrence
        s = m.zero_state()
        for t in range(8 - truncation):
            s = m.step(s, obs[t])
    for t in range(8):
        tb.observe(obs[t], targets[t], t == 0)
    got = [p.grad.clone() for p in m.parameters()]
    for t in range(8 - truncation, 8):
        s = m.step(s, obs[t].detach())
    logits = m.logits(s)  # (R, C)
    loss = F.cross_entropy(logits, targets[7], reduction="sum")  # summed over runs
    want = torch.autograd.grad(loss, list(m.parameters()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_t1_gradient_of_the_recurrent_weights_uses_the_previous_state_as_a_constant() -> None:
    obs, targets = stream(5, 2)
    tb = learner(1)
    for t in range(5):
        tb.observe(obs[t], targets[t], t == 0)
    # T = 1 still trains W_h, through h[t] = tanh(W_x o[t] + b + W_h h[t-1]) with h[t-1] fixed
    assert tb.model.cell.recurrent.weight.grad.abs().sum() > 0
