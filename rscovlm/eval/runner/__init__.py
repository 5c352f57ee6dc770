"""The evaluation runner (``rscovlm eval run``/``status``/``score RUN``), one job per module:

- :mod:`~rscovlm.eval.runner.manifest`: what a run is, frozen; what differs on a rerun;
- :mod:`~rscovlm.eval.runner.shards`: stable id-hash shards and the worker slot (``--shard``,
  torchrun, SLURM), with no collective call anywhere;
- :mod:`~rscovlm.eval.runner.store`: one fsynced JSONL per worker process, and the scan;
- :mod:`~rscovlm.eval.runner.batching`: conversations at the run's band, batches sorted by
  visual tokens and grouped by image, pixels decoded once;
- :mod:`~rscovlm.eval.runner.worker`: the loop; :mod:`~rscovlm.eval.runner.zoom`: UHR samples
  through the Zoom-in Chain (ours or the official loop);
- :mod:`~rscovlm.eval.runner.session`: open or resume a run;
- :mod:`~rscovlm.eval.runner.merge`: coverage, merged predictions, scores and ``results.json``.

The run folder::

    RUN/manifest.json                     the frozen manifest
    RUN/predictions/<host>-<pid>-<tag>.jsonl   one per worker process
    RUN/missing.jsonl                     {bench, id} without a prediction (eval score)
    RUN/scores/<BENCH>/scores.json        what write_scores writes, per benchmark
    RUN/scores/<BENCH>/sample_scores.jsonl
    RUN/scores/<BENCH>/predictions.jsonl  the merged predictions
    RUN/results.json                      one summary over all benchmarks
"""
