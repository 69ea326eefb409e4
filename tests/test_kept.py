"""The bounded store of a worker's last answers (parsed trees, callers' walks)."""

from __future__ import annotations

from codemods.kept import Kept


def test_the_least_recently_used_answer_goes_first():
    kept: Kept[str, str] = Kept(2)
    made: list[str] = []

    def make(key: str):
        return lambda: made.append(key) or key.upper()

    assert kept.get("a", make("a")) == "A"
    kept.get("b", make("b"))
    kept.get("a", make("a"))  # used again: now the newest
    kept.get("c", make("c"))  # b goes
    kept.get("a", make("a"))
    kept.get("b", make("b"))
    assert made == ["a", "b", "c", "b"]


def test_a_budget_bounds_the_total_weight_and_the_last_answer_stays_whatever_it_weighs():
    kept: Kept[str, str] = Kept(64, budget=10, weigh=len)
    for key in ("aaaa", "bbbb"):
        kept.get(key, key.upper)
    assert (len(kept), kept.weight) == (2, 8)
    kept.get("cccc", lambda: "cccc")  # 12 > 10: aaaa goes
    assert (len(kept), kept.weight) == (2, 8)
    made: list[str] = []
    kept.get("aaaa", lambda: made.append("aaaa") or "aaaa")
    assert made == ["aaaa"]
    kept.get("x" * 30, lambda: "big")  # heavier than the budget: kept alone
    assert (len(kept), kept.weight) == (1, 30)
    kept.clear()
    assert (len(kept), kept.weight) == (0, 0)


def test_the_tree_stores_weigh_a_file_by_its_size():
    from codemods import trees

    store = trees.by_size(lambda key: len(key[1]))
    big = "x = 1\n" * (trees.BUDGET // 6)
    store.get(("a.py", big), lambda: 1)
    store.get(("b.py", big), lambda: 2)
    assert len(store) == 1  # two such files are over the budget
