"""The Zoom-in Chain's crop path on a huge GeoTIFF: speed, peak memory and visual tokens.

Workload: a 30000² RGB GeoTIFF (tiled 512², deflate, georeferenced), written window by window
by :func:`rscovlm.data.sources.synthetic_raster.write_large_geotiff` into a temporary folder, or
reused when ``--raster`` names an existing file (written there otherwise).

Measured in the same run:

(a) **Speed.** The zoom crop path, :func:`rscovlm.imaging.read_region` of a crop window resized
    to the model's band (header check, windowed read, bicubic resize to the crop's
    ``smart_resize``), against a raw rasterio window read of the same window (open + read, no
    conversion, no resize), and against that raw read plus the PIL bicubic resize any model
    input needs (most of the crop path's time is that resize). Seeded random windows of
    ``--crop`` pixels a side; best of ``--repeats`` passes each. Ratios = crop path / baseline.
(b) **Peak memory.** Peak RSS (``resource`` ``ru_maxrss``) of fresh subprocesses: an idle
    interpreter with the same imports; the crop path on the 30000² raster; a full PIL decode.
    PIL refuses a 30000² image (900 MP is over its decompression-bomb limit of ~179 MP), and
    the benchmark shows that refusal; the full decode is therefore measured on a 12000² stand-in
    (``--stand-in``, same writer) with ``Image.MAX_IMAGE_PIXELS`` raised *only inside that
    baseline subprocess*. The crop path is measured on the stand-in too, for a like-for-like
    ratio.
(c) **Visual tokens per question.** The chain's context (overview at the band + one crop) and
    the tokens encoded over its two turns, against feeding the image at native resolution
    (:func:`rscovlm.resolution.visual_tokens` of the full size rounded to the factor).

Run: ``.venv/bin/python benchmarks/uhr_crop.py [--size 30000] [--crop 1024] [--raster PATH]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rscovlm.imaging import read_region
from rscovlm.resolution import RSCOVLM_BAND, CoordMap, smart_resize, visual_tokens

_CHILD = r"""
import json, resource, sys, time
mode, path, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
import numpy as np
from PIL import Image
import rasterio
from rscovlm.imaging import read_region
out = {}
if mode == "crop":
    for x1, y1, x2, y2, w, h in args:
        read_region(path, (x1, y1, x2, y2), (w, h))
elif mode == "pil_default":
    try:  # PIL's own limits, untouched
        with Image.open(path) as img:
            img.load()
        out["refused"] = None
    except Image.DecompressionBombError as exc:
        out["refused"] = str(exc)[:160]
elif mode == "pil_raised":
    Image.MAX_IMAGE_PIXELS = None  # raised for this baseline process only
    t = time.perf_counter()
    with Image.open(path) as img:
        img.load()
        out["size"] = img.size
    out["seconds"] = time.perf_counter() - t
# VmHWM: ru_maxrss survives execve on Linux and would report the parent's peak.
with open("/proc/self/status") as fh:
    hwm = [line for line in fh if line.startswith("VmHWM:")]
kb = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["peak_rss_mb"] = kb / 1024
print(json.dumps(out))
"""


def child(mode: str, path: Path, args: object = None) -> dict[str, object]:
    """Run one measurement in a fresh interpreter; its JSON line."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path), json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_raster(path: Path, size: int, seed: int) -> Path:
    """The raster at ``path``, written first when missing."""
    if not path.is_file():
        from rscovlm.data.sources.synthetic_raster import write_large_geotiff

        start = time.perf_counter()
        write_large_geotiff(path, size=size, n_targets=4, seed=seed)
        print(f"wrote {size}² GeoTIFF {path} in {time.perf_counter() - start:.1f} s")
    return path


def crop_windows(size: int, crop: int, n: int, seed: int) -> list[tuple[int, int, int, int]]:
    """Seeded crop windows of ``crop`` pixels a side inside a ``size``² image."""
    rng = np.random.default_rng(seed)
    xs, ys = rng.integers(0, size - crop, n), rng.integers(0, size - crop, n)
    return [(int(x), int(y), int(x) + crop, int(y) + crop) for x, y in zip(xs, ys, strict=True)]


def time_crop_path(path: Path, windows: list[tuple[int, int, int, int]]) -> float:
    """Seconds to read every window as the zoom agent does (resized to the band)."""
    start = time.perf_counter()
    for w in windows:
        cmap = CoordMap.for_image(w[2] - w[0], w[3] - w[1], RSCOVLM_BAND)
        read_region(path, w, cmap.resized_size)
    return time.perf_counter() - start


def time_raw_read(
    path: Path, windows: list[tuple[int, int, int, int]], resize_to: tuple[int, int] | None
) -> float:
    """Seconds for a raw rasterio window read (open + read) of every window; with
    ``resize_to``, plus the bicubic resize the model input needs anyway."""
    import rasterio
    from PIL import Image
    from rasterio.windows import Window

    start = time.perf_counter()
    for x1, y1, x2, y2 in windows:
        with rasterio.open(path) as src:
            data = src.read(window=Window(x1, y1, x2 - x1, y2 - y1))
        if resize_to is not None:
            img = Image.fromarray(np.ascontiguousarray(np.moveaxis(data, 0, -1)))
            img.resize(resize_to, Image.Resampling.BICUBIC)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30000, help="side of the big raster")
    parser.add_argument("--stand-in", type=int, default=12000, help="side PIL decodes whole")
    parser.add_argument("--crop", type=int, default=1024, help="crop window side (original px)")
    parser.add_argument("--crops", type=int, default=20, help="windows per timing pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raster", type=Path, default=None, help="reuse (or write) this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        big = ensure_raster(args.raster or Path(tmp) / "big.tif", args.size, args.seed)
        small = ensure_raster(Path(tmp) / "stand_in.tif", args.stand_in, args.seed)
        from rscovlm.imaging import image_size

        width, height = image_size(big)
        print(f"raster: {width}×{height} RGB GeoTIFF ({big.stat().st_size / 2**20:.0f} MB file)")

        # (a) speed
        windows = crop_windows(min(width, height), args.crop, args.crops, args.seed)
        resized = CoordMap.for_image(args.crop, args.crop, RSCOVLM_BAND).resized_size
        time_crop_path(big, windows[:2])  # warm-up: imports, GDAL block cache for the header
        time_raw_read(big, windows[:2], resized)
        crop_t, raw_t, raw_resize_t = [], [], []
        for _ in range(args.repeats):
            crop_t.append(time_crop_path(big, windows))
            raw_t.append(time_raw_read(big, windows, None))
            raw_resize_t.append(time_raw_read(big, windows, resized))
        n = len(windows)
        per_crop, per_raw = min(crop_t) / n, min(raw_t) / n
        per_raw_resize = min(raw_resize_t) / n
        print(f"\n(a) {n} crops of {args.crop}² (resized to {resized[0]}×{resized[1]})")
        print(f"    raw rasterio window read:            {per_raw * 1e3:8.1f} ms per crop")
        print(f"    raw read + PIL bicubic resize:       {per_raw_resize * 1e3:8.1f} ms per crop")
        print(f"    zoom crop path (imaging.read_region): {per_crop * 1e3:7.1f} ms per crop")
        print(f"    ratio crop path / raw read:          {per_crop / per_raw:8.2f}")
        print(f"    ratio crop path / raw read + resize: {per_crop / per_raw_resize:8.2f}")

        # (b) peak memory, each in a fresh process
        crop_args = [[*w, *resized] for w in windows[:5]]
        bare = child("none", big)["peak_rss_mb"]
        crop_big = child("crop", big, crop_args)["peak_rss_mb"]
        small_windows = crop_windows(args.stand_in, args.crop, 5, args.seed)
        crop_small = child("crop", small, [[*w, *resized] for w in small_windows])["peak_rss_mb"]
        refused = child("pil_default", big)["refused"]
        pil = child("pil_raised", small)
        print("\n(b) peak RSS of a fresh process (VmHWM, MB)")
        rows = [
            ("imports only", bare),
            (f"crop path, 5 crops of {width}²", crop_big),
            (f"crop path, 5 crops of {args.stand_in}²", crop_small),
            (f"PIL full decode of {args.stand_in}²*", pil["peak_rss_mb"]),
        ]
        for label, mb in rows:
            print(f"    {label:<40} {mb:8.0f}")
        print(
            "    * Image.MAX_IMAGE_PIXELS raised in that baseline process only "
            f"({pil['seconds']:.1f} s)"
        )
        print(f"    PIL full decode of {width}² with its default limit: refused ({refused})")
        print(
            f"    ratio PIL decode / crop path ({args.stand_in}²): "
            f"{pil['peak_rss_mb'] / crop_small:.1f} "
            f"(above the imports: {(pil['peak_rss_mb'] - bare) / max(crop_small - bare, 1.0):.0f}×)"
        )
        print(
            f"    a full decode of {width}² would hold at least "
            f"{width * height * 3 / 2**20:,.0f} MB of RGB pixels (arithmetic, not measured)"
        )

        # (c) visual tokens
        over = CoordMap.for_image(width, height, RSCOVLM_BAND)
        crop_map = CoordMap.for_image(args.crop, args.crop, RSCOVLM_BAND)
        nh, nw = smart_resize(height, width, 28, RSCOVLM_BAND.min_pixels, 2 * width * height)
        native = visual_tokens(nh, nw)
        context = over.visual_tokens + crop_map.visual_tokens
        encoded = over.visual_tokens + context  # turn 1 sees the overview, turn 2 both
        print("\n(c) visual tokens per question")
        ow, oh = over.resized_size
        cw, ch = crop_map.resized_size
        print(f"    overview at the band, {ow}×{oh}:  {over.visual_tokens:>12,}")
        print(f"    one crop, {cw}×{ch}:              {crop_map.visual_tokens:>12,}")
        print(f"    chain context (overview + crop):   {context:>12,}")
        print(f"    chain, encoded over both turns:    {encoded:>12,}")
        print(f"    native resolution {nw}×{nh}:    {native:>12,}")
        print(f"    ratio native / chain context:      {native / context:12,.0f}")


if __name__ == "__main__":
    main()
