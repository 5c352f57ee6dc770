"""Class lists of the detection datasets, and the label text the checkpoints were trained on.

The tuples keep each dataset's ORIGINAL spelling and order (the eval tuples of WIRE §6; the order
is the ``cls_map`` index used by the metrics). The model never sees these spellings: it sees the
normalised name (every ``-`` turned into a space, then lower-cased, WIRE §2.1), and the category
string of the user prompt lists the normalised names in plain string order.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rscovlm.errors import InputError

DOTA_V1_0: tuple[str, ...] = (
    "plane",
    "baseball-diamond",
    "bridge",
    "ground-track-field",
    "small-vehicle",
    "large-vehicle",
    "ship",
    "tennis-court",
    "basketball-court",
    "storage-tank",
    "soccer-ball-field",
    "roundabout",
    "harbor",
    "swimming-pool",
    "helicopter",
)
DOTA_V1_5: tuple[str, ...] = (*DOTA_V1_0, "container-crane")
DOTA_V2_0: tuple[str, ...] = (*DOTA_V1_5, "airport", "helipad")

#: The eval tuple's spelling (lower-case), not the mixed case of the DIOR files; the normalised
#: names are the same either way. Note ``dam`` after the two expressway classes.
DIOR: tuple[str, ...] = (
    "airplane",
    "airport",
    "baseballfield",
    "basketballcourt",
    "bridge",
    "chimney",
    "expressway-service-area",
    "expressway-toll-station",
    "dam",
    "golffield",
    "groundtrackfield",
    "harbor",
    "overpass",
    "ship",
    "stadium",
    "storagetank",
    "tenniscourt",
    "trainstation",
    "vehicle",
    "windmill",
)

#: The 34 classes of the RSCoVLM eval tuple (FAIR1M-1.0 as evaluated there).
FAIR1M_V1_0: tuple[str, ...] = (
    "Boeing737",
    "Boeing747",
    "Boeing777",
    "Boeing787",
    "C919",
    "A220",
    "A321",
    "A330",
    "A350",
    "ARJ21",
    "Passenger Ship",
    "Motorboat",
    "Fishing Boat",
    "Tugboat",
    "Engineering Ship",
    "Liquid Cargo Ship",
    "Dry Cargo Ship",
    "Warship",
    "Small Car",
    "Bus",
    "Cargo Truck",
    "Dump Truck",
    "Van",
    "Trailer",
    "Tractor",
    "Excavator",
    "Truck Tractor",
    "Basketball Court",
    "Tennis Court",
    "Football Field",
    "Baseball Field",
    "Intersection",
    "Roundabout",
    "Bridge",
)

SRSDD: tuple[str, ...] = (
    "Cell-Container",
    "Container",
    "Dredger",
    "Fishing",
    "LawEnforce",
    "ore-oil",
)
RSAR: tuple[str, ...] = ("ship", "aircraft", "car", "tank", "bridge", "harbor")
HRSC: tuple[str, ...] = ("ship",)

#: Registry of the built-in lists, by the names the command line and configs accept.
CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "dota1.0": DOTA_V1_0,
    "dota1.5": DOTA_V1_5,
    "dota2.0": DOTA_V2_0,
    "dior": DIOR,
    "fair1m1.0": FAIR1M_V1_0,
    "srsdd": SRSDD,
    "rsar": RSAR,
    "hrsc": HRSC,
}


def normalize_label(name: str) -> str:
    """The label text of a class, as the checkpoints read and write it (WIRE §2.1).

    Only hyphens and case change; underscores and internal spaces stay, so the mapping is the one
    the training code applied and nothing more.

    Examples:
        >>> normalize_label("small-vehicle"), normalize_label("LawEnforce")
        ('small vehicle', 'lawenforce')
    """
    return name.replace("-", " ").lower()


def categories_str(classes: Iterable[str]) -> str:
    """The category list of the detection user prompt: normalised names, sorted, ``", "``-joined.

    Every class of the dataset is listed, present in the image or not, so one string serves the
    whole dataset. Sorting is plain ``str`` order of the normalised names (WIRE §2.1).

    Examples:
        >>> categories_str(RSAR)
        'aircraft, bridge, car, harbor, ship, tank'
    """
    return ", ".join(sorted(normalize_label(c) for c in classes))


def get_classes(name_or_path: str | Path) -> tuple[str, ...]:
    """Resolve a class list by registry name or from a text file with one class per line.

    Args:
        name_or_path: A key of :data:`CLASS_LISTS` (case-insensitive) or the path of a UTF-8 text
            file; blank lines and surrounding whitespace are ignored.

    Returns:
        The class names in their original spelling and order.

    Raises:
        InputError: The name is unknown and no such file exists, the file cannot be read, it
            lists no class, or two of its classes share a normalised name (the model could not
            tell them apart).

    Examples:
        >>> get_classes("hrsc")
        ('ship',)
    """
    key = str(name_or_path).strip().lower()
    if key in CLASS_LISTS:
        return CLASS_LISTS[key]
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(CLASS_LISTS)
        raise InputError(
            f"unknown class list {str(name_or_path)!r}: not a file and not one of {known}"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read class list {str(path)!r}: {err}") from err
    classes = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not classes:
        raise InputError(f"class list {str(path)!r} has no class")
    seen: dict[str, str] = {}
    for name in classes:
        label = normalize_label(name)
        if label in seen:
            raise InputError(
                f"class list {str(path)!r}: {seen[label]!r} and {name!r} have the same label text"
            )
        seen[label] = name
    return classes
