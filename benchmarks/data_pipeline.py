"""The online data path against decoding and resizing alone.

Workload (seeded): synthetic DOTA-layout scenes (PNG, 512² by default, 5–15 oriented objects
each) read through the real adapters; a mixture draws detection samples with the paper's render
policy (random resize on every sample, quads, plain text).

Measured, in the same process and run:

- **full path**: mixture item -> record -> :func:`~rscovlm.data.render.render` (random size,
  prompt, coordinates through ``CoordMap``) -> image decoded, converted to RGB and resized to the
  drawn size (:class:`~rscovlm.data.loader.ConversationLoader`, ``num_workers=0``);
- **baseline**: PIL decode + RGB + bicubic resize of the same files to the same sizes, in the
  same order: the pixel work any loader must do.

The ratio full / baseline (images per second) is the share of throughput the online engine
keeps; the goal is >= 0.8. Both are timed ``--repeats`` times, alternating, and the best of each
is reported (the machine is shared).

Run: ``.venv/bin/python benchmarks/data_pipeline.py [--scenes 32] [--samples 256] [--size 512]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

from rscovlm.data.loader import ConversationLoader, ListStore
from rscovlm.data.mixture import Mixture, MixtureEntry
from rscovlm.data.policy import RenderPolicy
from rscovlm.data.record import Record
from rscovlm.data.sources.synthetic import generate_scenes, iter_synthetic_records
from rscovlm.imaging import image_size


def make_records(root: Path, scenes: int, size: int, seed: int) -> list[Record]:
    """Detection records of seeded synthetic scenes, image sizes filled in as a build does."""
    generate_scenes(root / "synthetic", n=scenes, size=size, seed=seed)
    records = [
        r
        for r in iter_synthetic_records(root, "synthetic", n=scenes, size=size, seed=seed)
        if isinstance(r, Record) and r.task == "detection"
    ]
    for rec in records:
        rec.images[0].width, rec.images[0].height = image_size(root / rec.images[0].path)
    return records


def run_full(loader: ConversationLoader) -> tuple[float, list[tuple[str, tuple[int, int]]]]:
    """Seconds for the whole stream, and the (file, size) of every image it produced."""
    work = []
    start = time.perf_counter()
    for sample in loader:
        for part in sample.conversation.image_parts():
            work.append((part.source, part.resized_size))
    return time.perf_counter() - start, work


def run_baseline(root: Path, work: list[tuple[str, tuple[int, int]]]) -> float:
    """Seconds for PIL decode + RGB + bicubic resize of the same files to the same sizes."""
    start = time.perf_counter()
    for source, size in work:
        with Image.open(root / source) as img:
            img.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=32)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        records = make_records(root, args.scenes, args.size, args.seed)
        store = ListStore({"dota": records})
        weight = args.samples / len(records)
        policy = RenderPolicy.paper()

        def loader() -> ConversationLoader:
            mix = Mixture([MixtureEntry("dota", weight)], store.sizes(), seed=args.seed)
            return ConversationLoader(mix, store, policy, root)

        run_full(loader())  # warm-up: imports, file cache
        full_times, base_times = [], []
        work: list[tuple[str, tuple[int, int]]] = []
        for _ in range(args.repeats):
            seconds, work = run_full(loader())
            full_times.append(seconds)
            base_times.append(run_baseline(root, work))
        n = len(work)
        full_ips, base_ips = n / min(full_times), n / min(base_times)
        mean_area = sum(w * h for _, (w, h) in work) / n
        print(
            f"workload: {n} images of {args.size}² PNG, resized to {mean_area:,.0f} px on average"
        )
        print(f"baseline (PIL decode + resize): {base_ips:8.1f} images/s")
        print(f"full online path:               {full_ips:8.1f} images/s")
        print(f"ratio full / baseline:          {full_ips / base_ips:8.3f}  (goal >= 0.8)")


if __name__ == "__main__":
    main()
