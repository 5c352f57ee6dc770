"""[EVAL] The strings of the TEOChatlas evaluation files' questions (EVAL_SUITE.md §3.9).

Kept apart from the training cleanup (:data:`rscovlm.formats.TEOCHAT_USER_REPLACEMENTS`)
because ``teochatlas_geochat`` rewrites its questions differently: the original replaces the
video lead-in with a literal ``<image>`` placeholder, which stays in the text after the real
image item (``'<image>Classify the image. Classes: airport, beach.'``).
"""

from __future__ import annotations

__all__ = ["TEOCHAT_GEOCHAT_LEAD_IN", "TEOCHAT_GEOCHAT_REPLACEMENT", "teochat_geochat_question"]

#: The lead-in of a TEOChatlas single-image (GeoChat-derived) eval question.
TEOCHAT_GEOCHAT_LEAD_IN = "This is a satellite image: <video> "
#: What the original puts in its place (a literal placeholder, not an image item).
TEOCHAT_GEOCHAT_REPLACEMENT = "<image>"


def teochat_geochat_question(value: str) -> str:
    """The official ``teochatlas_geochat`` question of a human turn's ``value``.

    Examples:
        >>> teochat_geochat_question("This is a satellite image: <video> Classify the image. ")
        '<image>Classify the image.'
    """
    return value.replace(TEOCHAT_GEOCHAT_LEAD_IN, TEOCHAT_GEOCHAT_REPLACEMENT).strip()
