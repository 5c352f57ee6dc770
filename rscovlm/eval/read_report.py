"""What a detection reader could not use: counts that always add up, and a few examples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscovlm.files import IMAGE_SUFFIXES

__all__ = ["ReadReport", "image_key"]

_EXAMPLES = 5  # bad lines kept verbatim per report (all are counted)


def image_key(name: object) -> str:
    """The image id of a name or path: the file name without an image extension.

    Examples:
        >>> image_key("images/P0001.png"), image_key("P0001__0.5__0___512")
        ('P0001', 'P0001__0.5__0___512')
    """
    text = str(name)
    if "." not in text and "/" not in text and text == text.strip():
        return text  # a bare id (the common case, once per name of a bulk read): no Path
    path = Path(text.strip())
    return path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name


@dataclass
class ReadReport:
    """What a reader found and could not use (all counted, a few examples kept)."""

    source: str
    n_boxes: int = 0
    n_kept: int = 0
    n_bad: int = 0
    bad_examples: list[str] = field(default_factory=list)
    unknown_classes: Counter[str] = field(default_factory=Counter)
    missing_images: Counter[str] = field(default_factory=Counter)
    n_unscored: int = 0
    n_outputs: int = 0
    n_empty_outputs: int = 0

    def bad(self, where: str, reason: str) -> None:
        """Count one unreadable line or entry."""
        self.n_bad += 1
        if len(self.bad_examples) < _EXAMPLES:
            self.bad_examples.append(f"{where}: {reason}")

    def summary(self) -> list[str]:
        """Human-readable lines, one per non-zero count."""
        out = [f"{self.source}: {self.n_boxes} boxes read, {self.n_kept} evaluated"]
        if self.n_outputs:
            out.append(f"  {self.n_outputs} model outputs, {self.n_empty_outputs} 'none'")
        if self.n_bad:
            out.append(f"  {self.n_bad} unreadable lines/entries, e.g. {self.bad_examples[0]}")
        if self.unknown_classes:
            top = ", ".join(f"{k!r}×{v}" for k, v in self.unknown_classes.most_common(5))
            out.append(f"  {sum(self.unknown_classes.values())} boxes of unknown class: {top}")
        if self.missing_images:
            n, k = sum(self.missing_images.values()), len(self.missing_images)
            hint = ""
            if any("___" in name for name in self.missing_images):
                hint = " (split-patch names: run `rscovlm eval merge` first)"
            out.append(f"  {n} boxes on {k} images missing from the ground truth{hint}")
        if self.n_unscored:
            out.append(f"  {self.n_unscored} boxes without a score (scored 1)")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        out = {k: v for k, v in vars(self).items() if not isinstance(v, Counter)}
        out["unknown_classes"] = dict(self.unknown_classes.most_common())
        out["missing_images"] = dict(self.missing_images.most_common())
        return out
