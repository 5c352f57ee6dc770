"""Map the label text a model wrote back to a class of the dataset, or say that it cannot.

The original evaluation mapped every unknown label to *some* class with ``rapidfuzz`` WRatio and
no cutoff (WIRE §2.8), so "airplane" in a DOTA answer became whatever scored best. Here matching
goes in three steps and stops at the first that succeeds:

1. ``exact``: the text equals a normalised name (what the checkpoints write) or an original name.
2. ``normalized``: equal after case folding and removing spaces, hyphens and underscores (and
   surrounding quotes or punctuation), e.g. ``Small_Vehicle`` or ``smallvehicle.``.
3. ``fuzzy``: :func:`rapidfuzz.fuzz.ratio` (normalised Indel similarity, 0-100) between the
   separator-normalised texts, best class taken only when the score reaches ``score_cutoff``.

``fuzz.ratio`` rather than WRatio: WRatio scores partial matches highly ("ship" against
"engineering ship" gets 90), which would force a generic word onto one of several specific
classes. With ratio and the default cutoff of 85, typos and plurals still match ("small
vehicles" 96, "harbour" 92, "cars" 86) while other words stay unknown ("vehicle" against "small
vehicle" is 70). Ties go to the class listed first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rscovlm.errors import InputError
from rscovlm.formats.classes import normalize_label

#: Default minimum :func:`rapidfuzz.fuzz.ratio` score (0-100) of a fuzzy match.
DEFAULT_SCORE_CUTOFF = 85.0

MatchHow = Literal["exact", "normalized", "fuzzy", "unknown"]

_SEPARATORS = re.compile(r"[\s_\-]+")
_EDGE_PUNCT = " \t.,;:'\"`"
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class MatchResult:
    """The outcome of matching one label text.

    Attributes:
        label: The matched class in its ORIGINAL spelling, or ``None`` when unknown.
        how: Which step matched; ``"unknown"`` when none did.
        score: 100 for exact and normalised matches, the fuzzy score otherwise (for an unknown
            label the best score found, to help diagnose near misses).
    """

    label: str | None
    how: MatchHow
    score: float


def _loose_key(text: str) -> str:
    """Case, separator and edge-punctuation insensitive key."""
    return _SEPARATORS.sub("", text.strip(_EDGE_PUNCT).casefold())


def _spaced(text: str) -> str:
    """Case-folded text with each run of separators turned into one space (fuzzy scoring)."""
    return _SEPARATORS.sub(" ", text.strip(_EDGE_PUNCT).casefold()).strip()


class LabelMatcher:
    """Match label texts against a fixed class list.

    Args:
        classes: The class names in their original spelling (e.g. :data:`DOTA_V1_0`).
        score_cutoff: Minimum fuzzy score (0-100); below it a label is unknown, never forced.

    Raises:
        InputError: No class, a cutoff outside [0, 100], or two classes that only differ in
            case or separators (a label could not tell them apart).

    Examples:
        >>> m = LabelMatcher(["small-vehicle", "ship"])
        >>> m.match("small vehicle")
        MatchResult(label='small-vehicle', how='exact', score=100.0)
        >>> m.match("Small_Vehicles").how, m.match("airplane").label
        ('fuzzy', None)
    """

    def __init__(self, classes: Iterable[str], score_cutoff: float = DEFAULT_SCORE_CUTOFF) -> None:
        self.classes: tuple[str, ...] = tuple(classes)
        if not self.classes:
            raise InputError("LabelMatcher needs at least one class")
        if not 0.0 <= score_cutoff <= 100.0:
            raise InputError(f"score_cutoff must be in [0, 100], got {score_cutoff}")
        self.score_cutoff = float(score_cutoff)
        self._exact: dict[str, str] = {}
        self._loose: dict[str, str] = {}
        for name in self.classes:
            key = _loose_key(name)
            if key in self._loose:
                raise InputError(
                    f"classes {self._loose[key]!r} and {name!r} cannot be told apart in label text"
                )
            self._loose[key] = name
            self._exact.setdefault(name, name)
            self._exact.setdefault(normalize_label(name), name)
        self._choices = [_spaced(name) for name in self.classes]
        self._cache: dict[str, MatchResult] = {}

    def match(self, text: str) -> MatchResult:
        """Match one label text (see the module docstring for the three steps)."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        result = self._match(text)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = result
        return result

    def _match(self, text: str) -> MatchResult:
        stripped = text.strip()
        if stripped in self._exact:
            return MatchResult(self._exact[stripped], "exact", 100.0)
        loose = _loose_key(stripped)
        if not loose:
            return MatchResult(None, "unknown", 0.0)
        if loose in self._loose:
            return MatchResult(self._loose[loose], "normalized", 100.0)
        # Imported here: only a label that is neither exact nor normalised needs it, and the
        # bulk readers (``eval det``) import this module on every run.
        from rapidfuzz import fuzz, process

        best = process.extractOne(_spaced(stripped), self._choices, scorer=fuzz.ratio)
        if best is None:
            return MatchResult(None, "unknown", 0.0)
        _, score, index = best
        if score >= self.score_cutoff:
            return MatchResult(self.classes[index], "fuzzy", float(score))
        return MatchResult(None, "unknown", float(score))
