"""Instruction conversations (LLaVA / ShareGPT: GeoChat, VHM, TEOChatlas) rendered as trained.

The record's turns keep ``<image>`` / ``<video>`` placeholders and ``<box:k>`` markers for the
boxes the source lifted out of the text (original pixels). Rendering (WIRE §3.4, §10):

- ``<image>\\n`` collapses to ``<image>``; each ``<image>`` takes the next image, a ``<video>``
  takes every frame as one video item (records with ``meta.video``, e.g. GeoChat-from-TEOChatlas
  single frames and TEOChatlas temporal samples). Without placeholders the media open the first
  user turn.
- Every ``<box:k>`` becomes ``[x1, y1, x2, y2]`` in the model's coordinates of the FIRST image,
  as the original did for every box of a sample (horizontal box of oriented GeoChat boxes).
- ``teochat`` style only: each user text item gets ``". ?"``→``"."``, ``".. "``→``"."`` and a
  strip; an answer made only of boxes becomes detection lines ``x1,y1,x2,y2 {cat}\\n`` with the
  category derived from the last user text (one fix: ``all `` is removed as a word, where the
  original also cut it out of ``small cars``); a region-captioning answer that repeats the
  question's boxes loses each repeated box followed by one whitespace character.
"""

from __future__ import annotations

import re

from rscovlm.data.conversation import ImagePart, Message, Part, TextPart, VideoPart
from rscovlm.data.record import Box, Record, Turn
from rscovlm.errors import InputError
from rscovlm.formats import (
    TEOCHAT_CATEGORY_REMOVALS,
    TEOCHAT_USER_REPLACEMENTS,
    DetObject,
    bracket_box,
    encode_detections,
)
from rscovlm.resolution import CoordMap

__all__ = ["render_instruction"]

_MEDIA_RE = re.compile(r"(<image>|<video>)")
_MARK_RE = re.compile(r"<box:(\d+)>")
_BOX_ONLY_RE = re.compile(r"<box:\d+>(?:\s*,\s*<box:\d+>)*\s*")
_REPEATED_BOX_RE = re.compile(r"<box:\d+>\s")
_DIGITS_RE = re.compile(r"[0-9]")
_ALL_RE = re.compile(r"\ball ")


def _box_ints(boxes: list[Box], ks: list[int], box_map: CoordMap, uid: str) -> list[list[int]]:
    if any(k >= len(boxes) for k in ks):
        raise InputError(f"{uid}: box marker without a box")
    if not ks:
        return []
    model = box_map.to_model([boxes[k].hbb for k in ks], "hbb")
    return [[int(v) for v in row] for row in model]


def _with_boxes(text: str, boxes: list[Box], box_map: CoordMap, uid: str) -> str:
    ks = [int(k) for k in _MARK_RE.findall(text)]
    values = iter(_box_ints(boxes, ks, box_map, uid))
    return _MARK_RE.sub(lambda _m: bracket_box(next(values)), text)


def _clean_user(text: str) -> str:
    for old, new in TEOCHAT_USER_REPLACEMENTS:
        text = text.replace(old, new)
    return text.strip()


def _category(user_text: str) -> str:
    """The label of a box-only TEOChatlas answer, from the last user text (WIRE §3.4)."""
    text = user_text
    for removed in TEOCHAT_CATEGORY_REMOVALS:
        text = text.replace(removed, "")
    text = _DIGITS_RE.sub("", text)
    # The original removed "all " anywhere, so "small cars" became "smcars"; a whole word only.
    text = _ALL_RE.sub("", text).replace("  ", " ")
    text = text.replace("?", "")
    return text.strip(".").strip().strip(".").strip()


class _Media:
    """Hands out the sample's images to placeholders in order."""

    def __init__(self, parts: list[ImagePart], video: bool, uid: str) -> None:
        self.parts, self.video, self.uid, self.next = parts, video, uid, 0

    def take(self, placeholder: str) -> Part:
        if self.next >= len(self.parts):
            raise InputError(f"{self.uid}: more placeholders than images")
        if placeholder == "<video>":
            frames = tuple(self.parts[self.next :])
            self.next = len(self.parts)
            return VideoPart(frames)
        self.next += 1
        return self.parts[self.next - 1]

    def rest(self) -> list[Part]:
        if self.next >= len(self.parts):
            return []
        if self.video:
            return [self.take("<video>")]
        out: list[Part] = list(self.parts[self.next :])
        self.next = len(self.parts)
        return out


def _user(text: str, media: _Media, teochat: bool) -> list[Part]:
    content: list[Part] = []
    for piece in _MEDIA_RE.split(text.replace("<image>\n", "<image>")):
        if piece in ("<image>", "<video>"):
            content.append(media.take(piece))
            continue
        piece = _clean_user(piece) if teochat else piece
        if piece:
            content.append(TextPart(piece))
    return content


def _answer(turn: Turn, question: Turn | None, user_text: str, box_map: CoordMap, uid: str) -> str:
    """A TEOChatlas assistant text: region-caption cleanup, then the box-only rewrite."""
    text = turn.text
    if (
        question is not None
        and turn.boxes
        and [b.hbb for b in turn.boxes] == [b.hbb for b in question.boxes]
    ):
        text = _REPEATED_BOX_RE.sub("", text)
    core = text.strip().rstrip(".")
    if turn.boxes and _BOX_ONLY_RE.fullmatch(core):
        ks = [int(k) for k in _MARK_RE.findall(core)]
        label = _category(user_text)
        if not label:
            raise InputError(f"{uid}: cannot derive the label of a box-only answer")
        objs = [DetObject(label, "hbb", tuple(c)) for c in _box_ints(turn.boxes, ks, box_map, uid)]
        return encode_detections(objs, "hbb", style="plain", sort=False)
    return _with_boxes(text, turn.boxes, box_map, uid)


def render_instruction(
    record: Record, parts: list[ImagePart], box_map: CoordMap, style: str
) -> list[Message]:
    """The messages of an instruction record (see the module docstring).

    Args:
        record: An ``instruction`` record.
        parts: One image part per record image, sizes already drawn.
        box_map: The first image's map: every in-text box is written through it.
        style: ``"teochat"`` or ``"llava"``.

    Raises:
        InputError: No turns, placeholders and images that do not match, or a bad box marker.
    """
    uid = record.uid
    if not record.conversation:
        raise InputError(f"{uid}: instruction record without turns")
    teochat = style == "teochat"
    media = _Media(parts, bool(record.meta.get("video")), uid)
    has_placeholders = any(_MEDIA_RE.search(t.text) for t in record.conversation)
    messages: list[Message] = []
    question: Turn | None = None
    user_text = ""
    for turn in record.conversation:
        if turn.role == "system":
            messages.append(Message("system", (TextPart(turn.text),)))
        elif turn.role == "user":
            content = _user(_with_boxes(turn.text, turn.boxes, box_map, uid), media, teochat)
            if not has_placeholders and question is None:
                content = media.rest() + content
            messages.append(Message("user", tuple(content)))
            question = turn
            user_text = "".join(p.text for p in content if isinstance(p, TextPart))
        elif teochat:
            answer = _answer(turn, question, user_text, box_map, uid)
            messages.append(Message("assistant", (TextPart(answer),)))
        else:
            text = _with_boxes(turn.text, turn.boxes, box_map, uid)
            messages.append(Message("assistant", (TextPart(text),)))
    if media.next != len(parts):
        raise InputError(f"{uid}: {len(parts)} images but {media.next} placed by placeholders")
    return messages
