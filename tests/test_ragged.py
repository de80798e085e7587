import pytest
import torch

from lmrescore.lattice.ragged import ragged_arange, ragged_lists, splits_of, take_rows, unique_rows


@pytest.mark.parametrize("shape,high", [((500, 3), 4), ((2000, 6), 50), ((1, 2), 3), ((0, 4), 3)])
def test_unique_rows_equals_torch_unique(shape: tuple[int, int], high: int) -> None:
    g = torch.Generator().manual_seed(shape[0])
    rows = torch.randint(-1, high, shape, generator=g)
    want, want_inv = torch.unique(rows, dim=0, return_inverse=True)
    got, got_inv = unique_rows(rows)
    assert torch.equal(got, want) and torch.equal(got_inv, want_inv)


def test_unique_rows_of_wide_values_packs_and_ranks_in_steps() -> None:
    """Values up to 2e6 in 9 columns: no single int64 key holds a row (packed 3 at a time)."""
    g = torch.Generator().manual_seed(0)
    rows = torch.randint(-1, 3, (3000, 9), generator=g)
    rows = torch.where(rows > 0, rows * 10**6, rows)  # -1, 0, 1e6, 2e6: many repeated rows
    want, want_inv = torch.unique(rows, dim=0, return_inverse=True)
    got, got_inv = unique_rows(rows)
    assert 100 < want.shape[0] < 3000
    assert torch.equal(got, want) and torch.equal(got_inv, want_inv)


def test_take_rows_in_any_order_with_repeats() -> None:
    # rows [1, 2], [], [3, 4, 5]
    values, splits = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 2, 2, 5])
    got, got_splits = take_rows(values, splits, torch.tensor([2, 0, 1, 2]))
    assert got.tolist() == [3, 4, 5, 1, 2, 3, 4, 5]
    assert got_splits.tolist() == [0, 3, 5, 5, 8]
    assert ragged_lists(got, got_splits) == [[3, 4, 5], [1, 2], [], [3, 4, 5]]


def test_ragged_arange_and_splits_of() -> None:
    assert ragged_arange(torch.tensor([5, 0, 2]), torch.tensor([2, 0, 3])).tolist() == [
        5, 6, 2, 3, 4]
    assert splits_of(torch.tensor([2, 0, 3])).tolist() == [0, 2, 2, 5]
