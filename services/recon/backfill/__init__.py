"""Publishing files to the topics: the pipeline `recon publish`, `recon backfill` and the demo share.

- ``jobs``: what a worker process does with a chunk (JSON Lines, a container block, demo records);
- ``pipeline``: the worker processes (ordered, a bounded window ahead) and the sender that tracks how
  far the broker has acknowledged everything;
- ``sources``: files into jobs, with the positions a resumed run seeks to;
- ``state``: the progress file, written only after the acknowledgements;
- ``run``: one backfill of one file, start to end (docs/backfill.md).
"""
