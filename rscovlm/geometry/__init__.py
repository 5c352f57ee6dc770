"""Boxes of remote-sensing objects: kinds, conversions, canonical order, clipping, IoU, NMS.

Three box kinds, spelled the same everywhere in rscovlm:

- ``hbb``: ``(N, 4)`` float ``[x1, y1, x2, y2]``, horizontal box, pixels.
- ``obb``: ``(N, 5)`` float ``[cx, cy, w, h, angle]``, oriented box; ``w`` is the long side and
  ``angle`` (degrees) turns the long side from +x toward +y (clockwise on screen in y-down image
  coordinates), in ``[-90, 90)``: the convention of the released RSCoVLM checkpoints.
- ``quad``: ``(N, 4, 2)`` float, four vertices.

Coordinates are pixels of whatever image the caller works in (x right, y down); nothing here
rescales (that is ``resolution.CoordMap``'s job). Every function is vectorised over N and returns
float64 (indices int64), never a Python loop over boxes or pairs (only the greedy NMS walks, in
score order, the boxes that suppress something). Polygon IoU of two strictly convex quads (nearly
all real ones: rectangles, DOTA annotations, predictions) is computed in numpy by clipping
(``rscovlm.geometry._convex``); any pair with a concave or nearly flat-cornered quad goes to the
shapely 2 array API. Both give the same IoU to rounding (1e-9 is tested), and degenerate input
follows the same rules on both paths.

OBB angle rules (WIRE §2.5: OpenCV ``minAreaRect``, then "if w < h swap and add 90", then wrap):
a vertical long side gives -90; an angle within 1e-9° of +90 is reported as -90 so it never
flickers between the two ends of the range. A square (sides equal to a relative 1e-9) has two
equivalent angles in range; we return the one in ``[-90, 0)`` (OpenCV's own range before 4.5.1
and again after opencv/opencv#28051; versions in between report the other one for a rotated
square), so an axis-aligned square gets -90, as in every OpenCV version (``hbb_to_obb`` agrees).
When two different rectangles have the same minimal area, see ``_min_area_rect`` for the pick
(OpenCV's depends on its hull's starting vertex).

Degenerate input has defined behaviour and never raises from inside shapely:

- A quad whose opposite edges cross or touch (a "bow-tie", usually a rectangle annotated in the
  wrong vertex order) is repaired by ordering its vertices around their mean, as
  :func:`canonical_quad` does, before any area, IoU or clipping: a bow-tie annotation of a
  rectangle behaves like the rectangle. Simple quads, concave ones included, keep their order.
- A quad is *valid* (:func:`valid_quads`) when its coordinates are finite, its repaired area
  exceeds ``1e-12 * (longest side of its hbb)**2`` (so collinear or duplicate points, up to
  rounding, are not) and the repaired ring is a valid shapely polygon.
- Invalid quads have area 0 and IoU 0 with everything, themselves included. ``rotated_nms``
  keeps them (they suppress nothing and nothing suppresses them; filter with ``valid_quads``
  first if you want them gone). ``clip_quads`` gives them a zero quad and kept fraction 0.
- Conversions never raise on bad numbers: a box with any non-finite value becomes a NaN row
  in every conversion to or from obb (hbb <-> quad just copy values); collinear points give an
  obb of height 0, and 4 equal points one of size 0 with angle -90.
- hbbs with non-finite coordinates or zero or negative width or height have IoU 0 with
  everything.
"""

from __future__ import annotations

from rscovlm.geometry._clip import clip_hbb, clip_quads
from rscovlm.geometry._iou import (
    hbb_iou_matrix,
    obb_iou_matrix,
    quad_iou_grouped,
    quad_iou_matrix,
    quad_iou_pairs,
)
from rscovlm.geometry._kinds import (
    BOX_KINDS,
    BoolArray,
    BoxKind,
    FloatArray,
    IntArray,
    ObjArray,
    as_quads,
    canonical_quad,
    hbb_to_quad,
    quad_to_hbb,
)
from rscovlm.geometry._nms import rotated_nms
from rscovlm.geometry._obb import convert, hbb_to_obb, obb_to_hbb, obb_to_quad, quad_to_obb

# Private helpers kept reachable as ``rscovlm.geometry._repair`` / ``._shoelace`` for the tests
# and ``benchmarks/iou.py`` (they were module-level names before the package split).
from rscovlm.geometry._validity import _repair as _repair
from rscovlm.geometry._validity import _shoelace as _shoelace
from rscovlm.geometry._validity import quad_area, valid_quads

__all__ = [
    "BOX_KINDS",
    "BoolArray",
    "BoxKind",
    "FloatArray",
    "IntArray",
    "ObjArray",
    "as_quads",
    "canonical_quad",
    "clip_hbb",
    "clip_quads",
    "convert",
    "hbb_iou_matrix",
    "hbb_to_obb",
    "hbb_to_quad",
    "obb_iou_matrix",
    "obb_to_hbb",
    "obb_to_quad",
    "quad_area",
    "quad_iou_grouped",
    "quad_iou_matrix",
    "quad_iou_pairs",
    "quad_to_hbb",
    "quad_to_obb",
    "rotated_nms",
    "valid_quads",
]
