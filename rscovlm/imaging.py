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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from rscovlm.errors import InputError
from rscovlm.files import RASTER_SUFFIXES
from rscovlm.resolution import PixelBand

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "NATIVE_READ_PIXELS",
    "WGS84",
    "RasterInfo",
    "decode_reduced",
    "draft_size",
    "image_size",
    "map_to_pixel",
    "open_image_bytes",
    "open_image_checked",
    "open_raster",
    "pixel_to_lonlat",
    "pixel_to_map",
    "read_overview",
    "read_region",
    "read_regions",
    "read_window",
    "verify_image",
]

#: Largest image decoded whole by default: 16384² pixels (PIL's bomb error starts at ~179 M).
DEFAULT_MAX_PIXELS = 16384 * 16384


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
        if path.suffix.lower() not in RASTER_SUFFIXES:
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


def open_image_bytes(raw: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An encoded image held in memory, opened lazily: header read, size checked, no pixels.

    The caller decides when (and at what reduction) to decode with :func:`decode_reduced`, so a
    server can account for the pixels a decode will cost before it spends them. Messages never
    carry Python reprs (they go back to remote clients).

    Raises:
        InputError: Not an image PIL recognises, or over ``max_pixels`` by its header.
    """
    import io

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(
            f"image is over PIL's decompression-bomb limit ({max_pixels} allowed)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError("not a recognised image format (PNG, JPEG, TIFF, WebP …)") from exc
    width, height = img.size
    if width * height > max_pixels:
        raise InputError(
            f"image is {width}x{height} = {width * height} pixels, over the limit {max_pixels}"
        )
    return img


def decode_reduced(img: Image.Image, target: tuple[int, int]) -> Image.Image:
    """Decode a lazily opened image, no larger than needed for a ``target`` ``(w, h)``.

    JPEG decodes at 1/2, 1/4 or 1/8 scale straight from the DCT (``Image.draft``) when the
    target allows, which cuts the decoded pixels (and memory) by up to 64×; other formats
    decode whole. The result is at least ``target`` in each side or the full image.

    Raises:
        InputError: Truncated or corrupt data.
    """
    if img.format == "JPEG":
        img.draft("RGB", target)
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError("the image data is truncated or corrupt") from exc
    return img


def draft_size(img: Image.Image, target: tuple[int, int]) -> tuple[int, int]:
    """The ``(w, h)`` :func:`decode_reduced` will decode ``img`` at (its cost, known before)."""
    width, height = img.size
    if img.format != "JPEG":
        return width, height
    scale = 1
    while scale < 8 and width // (scale * 2) >= target[0] and height // (scale * 2) >= target[1]:
        scale *= 2
    return -(-width // scale), -(-height // scale)


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
            if path.suffix.lower() not in RASTER_SUFFIXES:
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


#: Regions up to this many pixels are read at native resolution and resized with PIL bicubic
#: (as training resized); larger ones are read decimated by rasterio first.
NATIVE_READ_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class RasterInfo:
    """What the header of an image or raster says, read lazily (no pixels decoded).

    Attributes:
        path: The file.
        size: ``(width, height)`` in pixels.
        crs: The coordinate reference system as a string (e.g. ``"EPSG:32650"``), or ``None``
            when the file is not georeferenced.
        transform: The affine pixel → map transform as its six GDAL-order coefficients
            ``(a, b, c, d, e, f)`` (``x = a·col + b·row + c``, ``y = d·col + e·row + f``), or
            ``None`` without georeferencing.
    """

    path: Path
    size: tuple[int, int]
    crs: str | None = None
    transform: tuple[float, float, float, float, float, float] | None = None

    @property
    def georeferenced(self) -> bool:
        """Whether pixels can be mapped to map coordinates."""
        return self.crs is not None and self.transform is not None


def open_raster(path: str | Path) -> RasterInfo:
    """The header of ``path`` (PNG/JPEG/TIFF/GeoTIFF): size, and CRS + transform if any.

    Raises:
        InputError: The file is missing or unreadable.
    """
    path = Path(path)
    size = image_size(path)
    crs = transform = None
    if path.suffix.lower() in RASTER_SUFFIXES:
        import rasterio
        from rasterio.errors import RasterioIOError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with rasterio.open(path) as src:
                    if src.crs is not None:
                        crs = src.crs.to_string()
                        t = src.transform
                        transform = (t.a, t.b, t.c, t.d, t.e, t.f)
        except RasterioIOError as exc:
            raise InputError(f"cannot read raster header of {path}: {exc}") from exc
    return RasterInfo(path, size, crs, transform)


def pixel_to_map(info: RasterInfo, xy: ArrayLike) -> NDArray[np.float64]:
    """Pixel ``(x, y)`` points (``(N, 2)``, pixel corners at integers) to map coordinates.

    Raises:
        InputError: The raster is not georeferenced.
    """
    if info.transform is None:
        raise InputError(f"{info.path} is not georeferenced")
    a, b, c, d, e, f = info.transform
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.stack([a * pts[:, 0] + b * pts[:, 1] + c, d * pts[:, 0] + e * pts[:, 1] + f], 1)


WGS84 = "EPSG:4326"
"""The CRS of RFC 7946 GeoJSON (axis order longitude, latitude)."""


def pixel_to_lonlat(info: RasterInfo, xy: ArrayLike) -> NDArray[np.float64]:
    """Pixel ``(x, y)`` points to WGS 84 ``(longitude, latitude)`` (RFC 7946's order).

    The map coordinates of :func:`pixel_to_map` are reprojected by PROJ through rasterio
    (``rasterio.warp.transform``, traditional GIS axis order: x = longitude), so no second
    geodesy stack is needed; a raster already in WGS 84 is passed through.

    Raises:
        InputError: The raster is not georeferenced or its CRS cannot be reprojected.
    """
    pts = pixel_to_map(info, xy)
    if info.crs is None or info.crs.upper() in (WGS84, "OGC:CRS84"):
        return pts
    from rasterio.errors import CRSError
    from rasterio.warp import transform

    try:
        lon, lat = transform(info.crs, WGS84, pts[:, 0].tolist(), pts[:, 1].tolist())
    except CRSError as exc:
        raise InputError(f"cannot reproject {info.path} ({info.crs}) to WGS 84: {exc}") from None
    return np.stack([np.asarray(lon, np.float64), np.asarray(lat, np.float64)], 1)


def map_to_pixel(info: RasterInfo, xy: ArrayLike) -> NDArray[np.float64]:
    """Map coordinates (``(N, 2)``) to pixel ``(x, y)``; the inverse of :func:`pixel_to_map`.

    Raises:
        InputError: The raster is not georeferenced or its transform is singular.
    """
    if info.transform is None:
        raise InputError(f"{info.path} is not georeferenced")
    a, b, c, d, e, f = info.transform
    det = a * e - b * d
    if det == 0:
        raise InputError(f"{info.path} has a singular geotransform")
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2) - np.array([c, f])
    col = (e * pts[:, 0] - b * pts[:, 1]) / det
    row = (-d * pts[:, 0] + a * pts[:, 1]) / det
    return np.stack([col, row], 1)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _array_to_rgb(arr: NDArray[np.uint8]) -> Image.Image:
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 2:  # grey + alpha: composite on white
        alpha = arr[..., 1:2].astype(np.float64) / 255.0
        grey = arr[..., :1] * alpha + 255.0 * (1 - alpha)
        arr = np.repeat(grey.astype(np.uint8), 3, axis=-1)
    elif arr.shape[-1] >= 4:
        alpha = arr[..., 3:4].astype(np.float64) / 255.0
        arr = (arr[..., :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]), "RGB")


def read_region(
    path: str | Path,
    window: tuple[int, int, int, int] | None = None,
    out_size: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """The region ``window = (x1, y1, x2, y2)`` of ``path`` (whole image if ``None``), RGB.

    Small files (within ``max_pixels``, not TIFF-like) are decoded by PIL after its size check.
    Rasters are read window by window: a region up to :data:`NATIVE_READ_PIXELS` at native
    resolution, a larger one decimated by rasterio to at most twice ``out_size`` — never a full
    decode. With ``out_size = (w, h)`` the result is then resized with PIL bicubic (the
    resampling training used). Parts of the window outside the image read as black.

    Raises:
        InputError: Unreadable file, or an empty window.
    """
    path = Path(path)
    width, height = image_size(path)
    x1, y1, x2, y2 = (0, 0, width, height) if window is None else (int(v) for v in window)
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"empty window {(x1, y1, x2, y2)} of {path}")
    rw, rh = x2 - x1, y2 - y1
    small_file = width * height <= max_pixels and path.suffix.lower() not in RASTER_SUFFIXES
    if small_file:
        img = _to_rgb(open_image_checked(path, max_pixels))
        if (x1, y1, x2, y2) != (0, 0, width, height):
            img = img.crop((x1, y1, x2, y2))
    elif rw * rh <= NATIVE_READ_PIXELS or out_size is None:
        if rw * rh > max_pixels:
            raise InputError(f"window {rw}×{rh} of {path} exceeds {max_pixels} pixels")
        img = _array_to_rgb(read_window(path, x1, y1, rw, rh))
    else:
        ow, oh = (min(rw, 2 * int(out_size[0])), min(rh, 2 * int(out_size[1])))
        img = _array_to_rgb(read_window(path, x1, y1, rw, rh, out_size=(ow, oh)))
    if out_size is not None and img.size != tuple(out_size):
        img = img.resize((int(out_size[0]), int(out_size[1])), Image.Resampling.BICUBIC)
    return img


def read_regions(
    path: str | Path,
    windows: Sequence[tuple[int, int, int, int] | None],
    out_sizes: Sequence[tuple[int, int] | None],
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Image.Image]:
    """:func:`read_region` of several windows of one file, each resized to its ``out_sizes``.

    The pixels are those :func:`read_region` gives window by window, but a small file (within
    ``max_pixels``, not TIFF-like) is decoded once for all windows instead of once per window;
    rasters are still read window by window.

    Raises:
        InputError: Unreadable file, an empty window, or the two lists differ in length.
    """
    if len(windows) != len(out_sizes):
        raise InputError(f"{len(windows)} windows for {len(out_sizes)} output sizes")
    path = Path(path)
    width, height = image_size(path)
    if width * height > max_pixels or path.suffix.lower() in RASTER_SUFFIXES:
        pairs = zip(windows, out_sizes, strict=True)
        return [read_region(path, w, s, max_pixels) for w, s in pairs]
    whole = _to_rgb(open_image_checked(path, max_pixels))
    out = []
    for window, size in zip(windows, out_sizes, strict=True):
        x1, y1, x2, y2 = (0, 0, width, height) if window is None else (int(v) for v in window)
        if x2 <= x1 or y2 <= y1:
            raise InputError(f"empty window {(x1, y1, x2, y2)} of {path}")
        img = whole if (x1, y1, x2, y2) == (0, 0, width, height) else whole.crop((x1, y1, x2, y2))
        if size is not None and img.size != tuple(size):
            img = img.resize((int(size[0]), int(size[1])), Image.Resampling.BICUBIC)
        out.append(img)
    return out


def read_overview(
    path: str | Path, band: PixelBand, factor: int = 28
) -> tuple[Image.Image, tuple[int, int]]:
    """The whole image resized into ``band`` (``smart_resize``), by decimated reads.

    Returns:
        ``(overview, original (w, h))``.
    """
    width, height = image_size(path)
    h, w = band.resize(height, width, factor)
    return read_region(path, None, (w, h)), (width, height)
