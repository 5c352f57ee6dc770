"""The render policy: per task, source and dataset, the pixel band, random resize and variants.

:class:`RenderOptions` says how one sample is drawn: its pixel band, the probability of a random
resize, the box kind and answer style of detection and grounding, the prompt-variant
probabilities, and a few task switches. :class:`RenderPolicy` layers options, most specific
last: built-in task defaults < policy ``defaults`` < ``tasks[task]`` < ``sources[record.source]``
< ``datasets[mixture entry name]``. A mixture entry's options (e.g. ``refgeo_poly`` and
``refgeo_hbb`` render the same records as quads and as horizontal boxes) therefore win.

Paper defaults (:meth:`RenderPolicy.paper`, WIRE §0, §7): band 64·28² … 1296·28², plain text
only, no proxy prompts, empty images kept, and a random resize on every detection and grounding
sample (``--prob_random_resize 1``). The original code also drew a random size for SFT-style
samples but discarded it, and never resized zoom samples at random, so those default to 0 here.
:meth:`RenderPolicy.detection_specialist` is RSCoVLM-det: band 256·28² … 1296·28², no random
resize. The model family decides the factor (28 or 32) and whether box text is in resized pixels
or on the 0–1000 grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from rscovlm.data.record import Record
from rscovlm.errors import InputError
from rscovlm.resolution import (
    DEFAULT_FAMILY,
    DETECTION_BAND,
    RSCOVLM_BAND,
    ModelFamily,
    PixelBand,
    get_family,
)

__all__ = ["AnswerSuffix", "InstructionStyle", "RenderOptions", "RenderPolicy"]

AnswerSuffix = Literal["none", "short", "lrsvqa"]
InstructionStyle = Literal["llava", "teochat"]


class RenderOptions(BaseModel):
    """How samples of one task / source / dataset are rendered (all fields have defaults).

    Attributes:
        min_pixels: Lower edge of the pixel band (resized area).
        max_pixels: Upper edge of the pixel band.
        random_resize_prob: Probability of an area-uniform random size in the band (else
            ``smart_resize``).
        box_kind: Box kind of detection and grounding answers.
        json_prob: Probability of the JSON answer style (the trained recipe: 0, plain only).
        proxy_prob: JSON only: probability of a proxy template, and independently of each of
            the ``bbox``→``bounding box`` / ``oriented``→``rotated`` spellings.
        open_ended_prob: Detection: probability of ``find all the visible remote sensing
            objects`` instead of the class list (labels keep their normalised names; the
            original's synonym table is not shipped).
        eval_prompt_prob: Detection, plain style: probability of the official evaluation's
            user text, with its trailing period (WIRE §2.7). The released recipe never trained
            it (0); a small model trained only on the period-less text answers the evaluation
            prompt with broken boxes (the demo's tiny model: '84,56,12,112' for
            '84,84,112,112'), so a recipe that is scored by ``eval run`` can show it both.
        keep_empty: Detection: render images without objects as ``There are none.``; if
            false they are skipped (:class:`~rscovlm.data.render.SkipSampleError`).
        drop_difficult: Detection: leave difficult objects out of the answer.
        classes: Detection / classification class list (registry name or names); default the
            record's ``meta`` (``class_list`` / ``classes``).
        answer_suffix: VQA: append no suffix, the short-answer one or the LRS-VQA one (count
            questions get the count variant); a question already ending with it is kept.
        instruction_style: ``teochat`` applies the TEOChatlas cleanup and the box-only answer
            rewrite (WIRE §3.4); ``llava`` passes the text through.
        zoom: VQA with exactly one zoom region renders the Zoom-in Chain.
        zoom_skip_categories: QA categories never zoomed (count questions, DESIGN facts).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_pixels: int = Field(default=RSCOVLM_BAND.min_pixels, gt=0)
    max_pixels: int = Field(default=RSCOVLM_BAND.max_pixels, gt=0)
    random_resize_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    box_kind: Literal["hbb", "quad", "obb"] = "quad"
    json_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    proxy_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    open_ended_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    eval_prompt_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    keep_empty: bool = True
    drop_difficult: bool = False
    classes: str | list[str] | None = None
    answer_suffix: AnswerSuffix = "none"
    instruction_style: InstructionStyle = "llava"
    zoom: bool = True
    zoom_skip_categories: tuple[str, ...] = ("count",)

    @model_validator(mode="after")
    def _band(self) -> RenderOptions:
        if self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels {self.min_pixels} > max_pixels {self.max_pixels}")
        return self

    @property
    def band(self) -> PixelBand:
        """The pixel band as a :class:`~rscovlm.resolution.PixelBand`."""
        return PixelBand(self.min_pixels, self.max_pixels)

    def updated(self, overrides: Mapping[str, Any], where: str = "options") -> RenderOptions:
        """A validated copy with ``overrides`` applied.

        Raises:
            InputError: An unknown key or a bad value (named, with ``where``).
        """
        if not overrides:
            return self
        try:
            return RenderOptions.model_validate({**self.model_dump(), **dict(overrides)})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(options)"
            raise InputError(f"{where}: {key}: {err['msg']}") from None


#: Built-in task defaults of the paper: detection and grounding samples are randomly resized,
#: detection answers quads and grounding answers horizontal boxes unless a dataset says otherwise.
PAPER_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "detection": {"random_resize_prob": 1.0, "box_kind": "quad"},
    "grounding": {"random_resize_prob": 1.0, "box_kind": "hbb"},
}


class RenderPolicy(BaseModel):
    """Layered render options plus the model family (see the module docstring).

    Attributes:
        family: Model family name (``qwen2_5_vl``, ``qwen2_vl``, ``qwen3_vl``).
        defaults: Options for every sample before task, source and dataset layers.
        tasks: Overrides per record task (``detection``, ``grounding``, ``vqa``, …).
        sources: Overrides per record source.
        datasets: Overrides per mixture entry name (most specific).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = DEFAULT_FAMILY
    defaults: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in PAPER_TASK_DEFAULTS.items()}
    )
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    _cache: dict[tuple[str, str, str | None], RenderOptions] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> RenderPolicy:
        try:
            get_family(self.family)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        base = RenderOptions()
        try:
            layer = base.updated(self.defaults, "defaults")
            for group in ("tasks", "sources", "datasets"):
                for name, opts in getattr(self, group).items():
                    layer.updated(opts, f"{group}.{name}")
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def model_family(self) -> ModelFamily:
        """The :class:`~rscovlm.resolution.ModelFamily` object."""
        return get_family(self.family)

    @classmethod
    def paper(cls, family: str = DEFAULT_FAMILY, **kwargs: Any) -> RenderPolicy:
        """The RSCoVLM-7B recipe (band 64·28² … 1296·28², random resize on det/grounding)."""
        return cls(family=family, **kwargs)

    @classmethod
    def detection_specialist(cls, family: str = DEFAULT_FAMILY) -> RenderPolicy:
        """RSCoVLM-det: band 256·28² … 1296·28², quads, never a random resize (WIRE §0)."""
        band = {"min_pixels": DETECTION_BAND.min_pixels, "max_pixels": DETECTION_BAND.max_pixels}
        return cls(
            family=family,
            defaults={**band, "random_resize_prob": 0.0},
            tasks={"detection": {"box_kind": "quad"}},
        )

    @property
    def band(self) -> PixelBand:
        """The band the policy renders images in: the smallest ``min_pixels`` and the largest
        ``max_pixels`` of any layer over the defaults (one band when no layer sets its own).

        It is what a model trained on this policy has seen, so the checkpoint records it
        (:mod:`rscovlm.model.manifest`) and inference feeds that band by default.

        >>> RenderPolicy(defaults={"min_pixels": 12544, "max_pixels": 50176}).band
        PixelBand(min_pixels=12544, max_pixels=50176)
        >>> RenderPolicy(datasets={"big": {"max_pixels": 2_000_000}}).band.max_pixels
        2000000
        """
        base = RenderOptions().updated(self.defaults, "defaults")
        layers = [base] + [
            base.updated(opts, f"{group}.{name}")
            for group in ("tasks", "sources", "datasets")
            for name, opts in getattr(self, group).items()
        ]
        return PixelBand(min(o.min_pixels for o in layers), max(o.max_pixels for o in layers))

    def options_for(self, record: Record, dataset: str | None = None) -> RenderOptions:
        """The options of ``record`` rendered for mixture entry ``dataset`` (layered, cached)."""
        key = (record.task, record.source, dataset)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        opts = RenderOptions().updated(self.defaults, "defaults")
        opts = opts.updated(self.tasks.get(record.task, {}), f"tasks.{record.task}")
        opts = opts.updated(self.sources.get(record.source, {}), f"sources.{record.source}")
        if dataset is not None:
            opts = opts.updated(self.datasets.get(dataset, {}), f"datasets.{dataset}")
        self._cache[key] = opts
        return opts
