"""``difflib.get_close_matches(word, candidates, n=1, cutoff)`` with the same answer, faster on a long list of
candidates (a backend catalogue's few hundred keys).

difflib tries two upper bounds of a candidate's ratio before the ratio itself, one candidate at a time: its
length, then the letters it has in common with the word (quick_ratio). Here the letters in common come for
all candidates at once: for each letter and count, one integer holds a byte per candidate (how often the
candidate has the letter, capped at the count), so adding one integer per letter of the word gives every
candidate's letters in common (a byte never overflows: it is at most the word's length, below 256). The
length bound is implied: the letters in common are never more than the shorter length. Answers are
remembered, as unknown keys repeat across files."""

from __future__ import annotations

import difflib
from collections import Counter
from difflib import SequenceMatcher
from functools import lru_cache

MAX_WORD = 255


class _Counts:
    """Letter counts of a list of candidates, made for a letter and count when a word first needs them."""

    def __init__(self, candidates: tuple[str, ...]):
        self.candidates = candidates
        self.sizes = tuple(map(len, candidates))
        self.raw: dict[str, bytes] = {}
        self.packed: dict[tuple[str, int], int] = {}

    def letter(self, ch: str, cap: int) -> int:
        """A byte per candidate: how often it has ``ch``, at most ``cap``; as one integer."""
        if (ch, cap) not in self.packed:
            if ch not in self.raw:
                self.raw[ch] = bytes(min(each.count(ch), MAX_WORD) for each in self.candidates)
            self.packed[(ch, cap)] = int.from_bytes(self.raw[ch].translate(_capped(cap)), "big")
        return self.packed[(ch, cap)]

    def common(self, word: str) -> bytes:
        """The number of letters each candidate has in common with ``word`` (difflib's quick_ratio matches)."""
        total = sum(self.letter(ch, n) for ch, n in Counter(word).items())
        return total.to_bytes(len(self.candidates), "big")


@lru_cache(maxsize=None)
def _capped(cap: int) -> bytes:
    return bytes(min(i, cap) for i in range(256))


@lru_cache(maxsize=8)
def _counts(candidates: tuple[str, ...]) -> _Counts:
    return _Counts(candidates)


@lru_cache(maxsize=4096)
def close_match(word: str, candidates: tuple[str, ...], cutoff: float) -> str | None:
    """The candidate difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff) returns, or None."""
    if len(word) > MAX_WORD:
        found = difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff)
        return found[0] if found else None
    counts = _counts(candidates)
    matcher = SequenceMatcher()
    matcher.set_seq2(word)
    best = None
    for each, size, common in zip(candidates, counts.sizes, counts.common(word)):
        length = size + len(word)
        if (2.0 * common / length if length else 1.0) < cutoff:  # difflib's _calculate_ratio
            continue
        matcher.set_seq1(each)
        score = matcher.ratio()
        if score >= cutoff and (best is None or (score, each) > best):
            best = (score, each)
    return best[1] if best else None
