"""Stage 3 of the pipeline, the logit cache: content-addressed entries of logits, features and
streamed moments, computed once per key and read back checked.

- :mod:`.key`: :class:`CacheKey` (model, weights sha256, image list, preprocessing, views,
  corruption, shard, mode, engine) and where an entry lives.
- :mod:`.entry`: an entry's files, read back checked (:func:`read_cached`), written last-file-valid.
- :mod:`.extract`: :func:`extract` (cached entry or computed once); :mod:`.run` runs the model
  chunk by resumable chunk; :mod:`.distributed` under torchrun; :mod:`.shards` splits and merges.
- :mod:`.logits`: a model's entries on several folders as one :class:`LogitData`, two models
  stacked, with provenance.
"""

from __future__ import annotations

from .entry import LogitSet
from .extract import extract
from .key import CacheKey, default_cache_dir
from .logits import LogitData, load_logits, provenance_record, read_entry, stack_models
from .shards import merge_shards

__all__ = ["CacheKey", "LogitData", "LogitSet", "default_cache_dir", "extract", "load_logits",
           "merge_shards", "provenance_record", "read_entry", "stack_models"]
