"""Applications over a :class:`rscovlm.model.Backend`: tiled detection over huge rasters, the
Zoom-in Chain agent and the OpenAI-compatible server.

They sit one floor above :mod:`rscovlm.model` so a backend never knows what runs over it, and
below ``eval`` / ``demo`` / ``cli``, which run them.
"""

from rscovlm.pipelines.detect import (
    DetectionResult,
    PatchResult,
    detect_image,
    detection_conversation,
)
from rscovlm.pipelines.detect_outputs import DETECT_FORMATS, write_outputs
from rscovlm.pipelines.serve import ServerConfig, make_server
from rscovlm.pipelines.zoom import ZoomAgent, ZoomQuery, ZoomResult, draw_trace

__all__ = [
    "DETECT_FORMATS",
    "DetectionResult",
    "PatchResult",
    "ServerConfig",
    "ZoomAgent",
    "ZoomQuery",
    "ZoomResult",
    "detect_image",
    "detection_conversation",
    "draw_trace",
    "make_server",
    "write_outputs",
]
