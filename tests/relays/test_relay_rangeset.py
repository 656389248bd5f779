from hypothesis import given
from hypothesis import strategies as st

from relays.core.rangeset import RangeSet


def test_in_order_adds_stay_one_range() -> None:
    rs = RangeSet()
    for i in range(1, 101):
        rs.add(i)
    assert list(rs) == [range(1, 101)]
    assert rs.gaps() == []
    assert 50 in rs and 101 not in rs and 0 not in rs


def test_holes_and_merging() -> None:
    rs = RangeSet()
    rs.add(1, 5)
    rs.add(10, 12)
    rs.add(7)
    assert list(rs) == [range(1, 5), range(7, 8), range(10, 12)]
    assert rs.gaps() == [range(5, 7), range(8, 10)]
    rs.add(5, 10)
    assert list(rs) == [range(1, 12)]
    rs.subtract(3, 6)
    assert list(rs) == [range(1, 3), range(6, 12)]
    assert rs.bounds() == range(1, 12)
    assert rs.shift() == range(1, 3)


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), max_size=40))
def test_matches_a_set_model(ops: list[tuple[int, int]]) -> None:
    rs = RangeSet()
    model: set[int] = set()
    for start, n in ops:
        rs.add(start, start + n)
        model.update(range(start, start + n))
    assert {v for r in rs for v in r} == model
    assert all(a.stop < b.start for a, b in zip(rs, list(rs)[1:]))  # sorted, disjoint, non-adjacent
    for v in range(0, 230):
        assert (v in rs) == (v in model)
