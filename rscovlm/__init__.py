"""rscovlm: co-train and evaluate vision-language models for remote-sensing multi-task learning.

The package is layered (see ``DESIGN.md``): the ground floor (:mod:`rscovlm.geometry`,
:mod:`rscovlm.resolution`, :mod:`rscovlm.imaging`), the wire formats (:mod:`rscovlm.formats`), the
data curation engine (:mod:`rscovlm.data`), models (:mod:`rscovlm.model`), co-training
(:mod:`rscovlm.train`) and evaluation (:mod:`rscovlm.eval`). Importing the package is cheap: heavy
dependencies are imported by the modules that need them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
