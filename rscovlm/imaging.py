"""Image and raster I/O that never decodes more than it must.

Three rules keep huge remote-sensing images (LRS-VQA images reach 27,328 px a side, a GeoTIFF of
the Zoom-in Chain demo 20,480 px) from exhausting memory:

- the size is read from the header first (:func:`image_size`); PIL's ``Image.open`` is lazy and
  rasterio reads only metadata, so this is cheap for any size;
- a full decode happens only after the size was checked against a pixel limit
  (:func:`open_image_checked`); PIL's own decompression-bomb check is never turned off;
- rasters above the limit are read window by window with rasterio (:func:`read_window`), which
  decodes only the blocks a window touches.

numpy, Pillow and rasterio only; no torch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from rscovlm.errors import InputError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "image_size",
    "open_image_checked",
    "read_window",
    "verify_image",
]

#: Largest image decoded whole by default: 16384² pixels (PIL's bomb error starts at ~179 M).
DEFAULT_MAX_PIXELS = 16384 * 16384

_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding pixels.

    PIL answers for the common formats; rasters PIL cannot open (large or multi-band GeoTIFF,
    images past PIL's bomb limit) are asked through rasterio.

    Raises:
        InputError: The file is missing or no reader recognises it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return int(img.size[0]), int(img.size[1])
    except Image.DecompressionBombError:
        pass
    except (OSError, SyntaxError, ValueError) as exc:
        if path.suffix.lower() not in _RASTER_SUFFIXES:
            raise InputError(f"not a readable image: {path} ({exc})") from exc
    return _raster_size(path)


def _raster_size(path: Path) -> tuple[int, int]:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            return int(src.width), int(src.height)
    except RasterioIOError as exc:
        raise InputError(f"not a readable image: {path} ({exc})") from exc


def open_image_checked(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image after checking its header size against ``max_pixels``.

    PIL's own decompression-bomb error (about 179 M pixels) still applies above that and is
    reported as an :class:`InputError`; read larger images with :func:`read_window`.

    Returns:
        The decoded PIL image (mode as stored).

    Raises:
        InputError: Missing, unreadable, larger than ``max_pixels``, truncated or corrupt.
    """
    path = Path(path)
    width, height = image_size(path)
    if width * height > max_pixels:
        raise InputError(
            f"image {path} is {width}x{height} = {width * height} pixels, over the limit "
            f"{max_pixels}; read it window by window"
        )
    try:
        img = Image.open(path)
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot decode image {path}: {exc}") from exc
    return img


def verify_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """Check that an image decodes and return its ``(width, height)``.

    Images within ``max_pixels`` are decoded whole with PIL (which detects truncation); a raster
    PIL cannot decode (multi-band or 16-bit GeoTIFF) and any image above ``max_pixels`` are
    checked by decoding their first and last 512² window with rasterio, so a 27k-pixel GeoTIFF is
    verified without holding it in memory.

    Raises:
        InputError: Missing, unreadable, truncated or corrupt.
    """
    path = Path(path)
    width, height = image_size(path)
    if width * height <= max_pixels:
        try:
            with Image.open(path) as img:
                img.load()
            return width, height
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            if path.suffix.lower() not in _RASTER_SUFFIXES:
                raise InputError(f"cannot decode image {path}: {exc}") from exc
    side = 512
    w, h = min(side, width), min(side, height)
    read_window(path, 0, 0, w, h)
    read_window(path, width - w, height - h, w, h)
    return width, height


def read_window(
    path: str | Path,
    x: int,
    y: int,
    width: int,
    height: int,
    out_size: tuple[int, int] | None = None,
) -> NDArray[np.uint8]:
    """Read the pixel window ``[x, x + width) × [y, y + height)`` as ``(h, w, bands)`` uint8.

    Only the blocks the window touches are decoded (rasterio). Parts of the window outside the
    image are filled with zeros. ``out_size = (w, h)`` resamples the window while reading
    (rasterio's decimated read), which is how DOTA-style tiling applies a rate < 1 to a huge
    raster. Non-uint8 rasters are scaled to 0–255 by their dtype's range.

    Raises:
        InputError: The file cannot be opened or read.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning on plain PNG/JPEG
            with rasterio.open(path) as src:
                shape = None
                if out_size is not None:
                    shape = (src.count, int(out_size[1]), int(out_size[0]))
                data = src.read(
                    window=Window(x, y, width, height),
                    boundless=True,
                    fill_value=0,
                    out_shape=shape,
                    resampling=Resampling.bilinear,
                )
    except RasterioIOError as exc:
        raise InputError(f"cannot read window of {path}: {exc}") from exc
    arr = np.moveaxis(data, 0, -1)
    if arr.dtype != np.uint8:
        info = np.iinfo(arr.dtype) if np.issubdtype(arr.dtype, np.integer) else None
        top = float(info.max) if info is not None else max(float(arr.max()), 1.0)
        arr = np.clip(arr.astype(np.float64) / top * 255.0, 0, 255).astype(np.uint8)
    return arr
