"""A bounded store of the answers a worker used last."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Kept(Generic[K, V]):
    """The last ``size`` answers used, for the worker's run. With ``weigh``, also no more
    than ``budget`` of their total weight (a parsed tree weighs its file's size: a few large
    files take the room of many small ones); the answer used last is kept whatever it weighs."""

    def __init__(self, size: int, budget: int | None = None, weigh: Callable[[K], int] | None = None) -> None:
        self.size = size
        self.budget = budget
        self._weigh = weigh
        self._kept: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self.weight = 0  # of what is kept now

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The answer kept for ``key``, else ``make()``'s (kept unless it raises)."""
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        value = self._kept[key] = make()
        if self._weigh is not None:
            weight = self._weights[key] = self._weigh(key)
            self.weight += weight
        while len(self._kept) > self.size or (self.budget is not None and self.weight > self.budget
                                               and len(self._kept) > 1):
            old, _ = self._kept.popitem(last=False)
            self.weight -= self._weights.pop(old, 0)
        return value

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        self._kept.clear()
        self._weights.clear()
        self.weight = 0
