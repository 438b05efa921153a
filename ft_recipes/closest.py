"""``difflib.get_close_matches(word, candidates, n=1, cutoff)`` with the same answer, faster on a long list of
candidates (a backend catalogue's few hundred keys): the two upper bounds difflib tries before its ratio
(the lengths, then the letters in common) come from counts made once per list, and an answer is remembered
(unknown keys repeat across files)."""

from __future__ import annotations

from collections import Counter
from difflib import SequenceMatcher
from functools import lru_cache


@lru_cache(maxsize=8)
def _table(candidates: tuple[str, ...]) -> tuple[tuple[str, int, dict], ...]:
    return tuple((each, len(each), Counter(each)) for each in candidates)


def _ratio(matches: int, length: int) -> float:
    return 2.0 * matches / length if length else 1.0  # difflib's _calculate_ratio


@lru_cache(maxsize=4096)
def close_match(word: str, candidates: tuple[str, ...], cutoff: float) -> str | None:
    """The candidate difflib.get_close_matches(word, candidates, n=1, cutoff=cutoff) returns, or None."""
    letters = Counter(word)
    matcher = SequenceMatcher()
    matcher.set_seq2(word)
    best = None
    for each, size, counts in _table(candidates):
        length = size + len(word)
        if _ratio(min(size, len(word)), length) < cutoff:
            continue
        common = sum(min(n, letters[ch]) for ch, n in counts.items() if ch in letters)
        if _ratio(common, length) < cutoff:
            continue
        matcher.set_seq1(each)
        score = matcher.ratio()
        if score >= cutoff and (best is None or (score, each) > best):
            best = (score, each)
    return best[1] if best else None
