import pytest
import torch

from lmrescore.lattice.rows import unique_rows


@pytest.mark.parametrize("shape,high", [((500, 3), 4), ((2000, 6), 50), ((1, 2), 3), ((0, 4), 3)])
def test_unique_rows_equals_torch_unique(shape: tuple[int, int], high: int) -> None:
    g = torch.Generator().manual_seed(shape[0])
    rows = torch.randint(-1, high, shape, generator=g)
    want, want_inv = torch.unique(rows, dim=0, return_inverse=True)
    got, got_inv = unique_rows(rows)
    assert torch.equal(got, want) and torch.equal(got_inv, want_inv)
