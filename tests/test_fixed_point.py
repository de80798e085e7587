"""The fixed-point identities: order K >= T is the exact RNN; order K forgets input t-K."""

import pytest
import torch
from torch import nn

from lmrescore.lm.cells import CELLS
from lmrescore.lm.fixed_point import fixed_point, sequential
from lmrescore.lm.model import ModelConfig, RNNLM

B, T, E, H = 3, 9, 5, 7


def make_stack(cell: str, layers: int) -> nn.ModuleList:
    torch.manual_seed(0)
    return nn.ModuleList(CELLS[cell](E if i == 0 else H, H) for i in range(layers))


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("layers", [1, 2])
def test_order_at_least_length_equals_sequential(cell: str, layers: int) -> None:
    cells = make_stack(cell, layers)
    x = torch.randn(B, T, E, dtype=torch.float64)
    cells.double()
    exact, _ = sequential(cells, x)
    for order in (T, T + 3):
        torch.testing.assert_close(fixed_point(cells, x, order), exact, rtol=0, atol=1e-12)
    # and a smaller order really is an approximation here
    assert (fixed_point(cells, x, T // 2) - exact).abs().max() > 1e-6


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_torch_reference_cells_agree(cell: str) -> None:
    """Our LSTM/GRU/Elman steps are the standard ones (checked against torch.nn)."""
    if cell == "rnn":
        ref = nn.RNN(E, H, batch_first=True)
    else:
        ref = {"gru": nn.GRU, "lstm": nn.LSTM}[cell](E, H, batch_first=True)
    ours = CELLS[cell](E, H)
    with torch.no_grad():
        ours.input.weight.copy_(ref.weight_ih_l0)
        ours.input.bias.copy_(ref.bias_ih_l0)
        ours.recurrent.weight.copy_(ref.weight_hh_l0)
        if cell == "gru":
            ours.recurrent_bias.copy_(ref.bias_hh_l0)
        else:
            ours.input.bias.add_(ref.bias_hh_l0)
    x = torch.randn(B, T, E)
    torch.testing.assert_close(sequential([ours], x)[0], ref(x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("layers", [1, 2])
def test_scoring_steps_in_place_equal_the_autograd_steps(cell: str, layers: int) -> None:
    """``Cell.step_`` (no autograd, overwrites its input) and ``RNNLM.step`` without gradients
    give the states of the plain steps, which training and the solvers use."""
    torch.manual_seed(0)
    one = CELLS[cell](E, H).double()
    state = torch.randn(11, one.state_size, dtype=torch.float64)
    xp = one.input_proj(torch.randn(11, E, dtype=torch.float64)).detach()
    with torch.no_grad():
        plain = one.step(state, xp)
        torch.testing.assert_close(one.step_(state, xp.clone()), plain, rtol=0, atol=1e-12)
    lm = RNNLM(ModelConfig(cell=cell, vocab_size=13, hidden_dim=H, num_layers=layers)).double()
    state = torch.randn(2, 5, lm.state_size, dtype=torch.float64)
    tokens = torch.randint(0, 13, (2, 5))
    with torch.no_grad():
        fused = lm.step(state, tokens)
    plain = lm.step(state, tokens)
    assert plain.requires_grad and fused.shape == state.shape
    torch.testing.assert_close(fused, plain.detach(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("layers", [1, 2])
def test_order_k_state_ignores_input_t_minus_k(cell: str, layers: int) -> None:
    cells = make_stack(cell, layers).double()
    order, t = 3, 6
    x = torch.randn(B, T, E, dtype=torch.float64)
    base = fixed_point(cells, x, order)
    far = x.clone()
    far[:, : t - order + 1] = torch.randn(B, t - order + 1, E, dtype=torch.float64)  # inputs <= t-K
    near = x.clone()
    near[:, t - order + 1] += 1.0  # input t-K+1: inside the window
    assert torch.equal(fixed_point(cells, far, order)[:, t], base[:, t])
    assert (fixed_point(cells, near, order)[:, t] - base[:, t]).abs().max() > 1e-6


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_sentence_starts_reset_state(cell: str) -> None:
    """Two sentences packed in one row score as if each ran alone, in both solvers."""
    cells = make_stack(cell, 2).double()
    x = torch.randn(1, T, E, dtype=torch.float64)
    starts = torch.zeros(1, T, dtype=torch.bool)
    starts[0, 0] = starts[0, 4] = True
    packed, _ = sequential(cells, x, starts)
    alone = torch.cat([sequential(cells, x[:, :4])[0], sequential(cells, x[:, 4:])[0]], dim=1)
    torch.testing.assert_close(packed, alone, rtol=0, atol=1e-12)
    torch.testing.assert_close(fixed_point(cells, x, T, starts), alone, rtol=0, atol=1e-12)
    # order 2 with the reset: position 4 sees only its own sentence
    short = fixed_point(cells, x, 2, starts)
    torch.testing.assert_close(short[:, 4:6], sequential(cells, x[:, 4:6])[0], rtol=0, atol=1e-12)


def test_carried_state_matches_one_long_run() -> None:
    cells = make_stack("lstm", 2).double()
    x = torch.randn(B, T, E, dtype=torch.float64)
    whole, _ = sequential(cells, x)
    first, state = sequential(cells, x[:, :4])
    second, _ = sequential(cells, x[:, 4:], init=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=1e-12)
    torch.testing.assert_close(fixed_point(cells, x[:, 4:], T, init=state), second,
                               rtol=0, atol=1e-12)


def test_gradients_flow_through_sweeps() -> None:
    model = RNNLM(ModelConfig(cell="lstm", vocab_size=11, hidden_dim=H, num_layers=2, order=3))
    inputs = torch.randint(0, 11, (B, T))
    loss, _ = model.nll(inputs, inputs, torch.ones(B, T, dtype=torch.bool))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_model_order_k_logits_equal_exact_when_k_covers_sentence() -> None:
    model = RNNLM(ModelConfig(cell="gru", vocab_size=11, hidden_dim=H, num_layers=2, order=T))
    model.eval()
    inputs = torch.randint(0, 11, (B, T))
    torch.testing.assert_close(model(inputs)[0], model(inputs, order=None)[0],
                               rtol=1e-5, atol=1e-5)
