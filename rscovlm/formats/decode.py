"""Model detection text → boxes in original pixels: the ONE decode every reader calls.

Tiled detection (``rscovlm detect``), the evaluation's ``vlm`` prediction reader and the patch
merge all turn a detection answer into boxes here, so a line can never count as a box on one
path and as noise on the other. One call:

1. drops a leading ``<think>…</think>`` block (:func:`~rscovlm.formats.tool_calls.strip_think`,
   as the official evaluation did, WIRE §1.4) — decided here once, for every caller;
2. parses the rest with :func:`~rscovlm.formats.boxes.parse_detections` (plain or JSON; hbb,
   obb and quad lines are all read, as the evaluation does);
3. matches each label with a :class:`~rscovlm.formats.labels.LabelMatcher` when one is given
   (exact, normalised, fuzzy with a cutoff); a label that matches no class is counted;
4. maps the coordinates to original pixels with :meth:`rscovlm.resolution.CoordMap.to_original`
   and converts every kind to a ``(4, 2)`` quad;
5. counts a box whose numbers are not finite or whose quad has no area as *degenerate*.

The counts add up: ``n_read = len(labels) + n_unknown_label + n_degenerate``; lines the parser
could not read are ``n_unreadable`` (with reasons in ``rejected``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from rscovlm import geometry
from rscovlm.errors import InputError
from rscovlm.formats.boxes import parse_detections
from rscovlm.formats.labels import LabelMatcher
from rscovlm.formats.objects import Rejected
from rscovlm.formats.tool_calls import strip_think
from rscovlm.geometry import BoxKind
from rscovlm.resolution import CoordMap

__all__ = ["DecodedBoxes", "decode_detections"]


@dataclass
class DecodedBoxes:
    """The boxes of one detection answer, in the ORIGINAL pixels of its :class:`CoordMap`.

    Attributes:
        labels: The class of each box (the matcher's spelling; the model's text without one).
        quads: ``(N, 4, 2)`` boxes.
        kinds: The box kind each was written in.
        n_read: Boxes the parser read.
        n_unknown_label: Boxes whose label matches no class.
        n_degenerate: Boxes with non-finite numbers or zero area.
        rejected: Lines or JSON items the parser could not read, with reasons.
        unknown_labels: How often each unmatched label text occurred.
        empty: The answer said "There are none.".
    """

    labels: list[str] = field(default_factory=list)
    quads: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4, 2)))
    kinds: list[BoxKind] = field(default_factory=list)
    n_read: int = 0
    n_unknown_label: int = 0
    n_degenerate: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    unknown_labels: Counter[str] = field(default_factory=Counter)
    empty: bool = False

    @property
    def n_unreadable(self) -> int:
        """Lines or items the parser could not read."""
        return len(self.rejected)


def decode_detections(
    text: str,
    cmap: CoordMap,
    matcher: LabelMatcher | None = None,
    *,
    kind: BoxKind | None = None,
) -> DecodedBoxes:
    """Decode one detection answer (see the module docstring); never raises on model text.

    Args:
        text: The raw model output.
        cmap: The map of the image the model saw (its ``orig_size`` is the frame of the result).
        matcher: Match labels to a class list; ``None`` keeps the model's label text.
        kind: Accept only this box kind (default: every kind, from each line's count).

    Examples:
        >>> cmap = CoordMap((1000, 1000), (500, 500))
        >>> out = decode_detections("<think>hm</think>10,20,30,40 plane\\n0,0,0,9 ship", cmap)
        >>> out.labels, out.quads[0][2].tolist(), out.n_degenerate
        (['plane'], [60.0, 80.0], 1)
    """
    parsed = parse_detections(strip_think(text), kind=kind)
    out = DecodedBoxes(rejected=list(parsed.rejected), empty=parsed.empty)
    out.n_read = len(parsed.objects)
    quads: list[NDArray[np.float64]] = []
    for obj in parsed.objects:
        label = obj.label
        if matcher is not None:
            found = matcher.match(obj.label).label
            if found is None:
                out.n_unknown_label += 1
                out.unknown_labels[obj.label] += 1
                continue
            label = found
        try:
            values = cmap.to_original(np.asarray(obj.coords, dtype=np.float64), obj.kind)
            quad = geometry.as_quads(geometry.convert(values, obj.kind, "quad"))[0]
        except (InputError, ValueError):  # non-finite numbers
            out.n_degenerate += 1
            continue
        if not geometry.valid_quads(quad[None])[0]:
            out.n_degenerate += 1
            continue
        quads.append(quad)
        out.labels.append(label)
        out.kinds.append(obj.kind)
    if quads:
        out.quads = np.stack(quads)
    return out
