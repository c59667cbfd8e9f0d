"""Sharded sample store: Zarr v3 or HDF5 shards plus ``manifest.json``.

Writing (inside pipeline tasks): build :class:`SampleRecord` objects and call :func:`write_shard`
(atomic, returns a :class:`ShardInfo`); on the client, record each shard in a :class:`Manifest`
and :meth:`Manifest.save` it. Reading: :func:`open_shards` (lazy, fork-safe random access).
Checking and describing: :func:`verify_store`, :func:`summarize_store`, :func:`plot_store`,
:func:`preview_grid`. Interrupted writes leave ``.partial-*`` entries that :func:`cleanup_partial`
removes.
"""

from __future__ import annotations

from raw_synth.store.checksum import ShardHasher, checksum_columns
from raw_synth.store.manifest import MANIFEST_NAME, Manifest, manifest_path
from raw_synth.store.opener import open_shard_file
from raw_synth.store.reader import ShardStore, normalise_dn, open_shards
from raw_synth.store.records import SampleRecord, ShardInfo, check_record, records_to_columns
from raw_synth.store.shard_file import FORMATS, SUFFIXES, ShardFile, format_of
from raw_synth.store.summary import plot_store, preview_grid, summarize_store
from raw_synth.store.verify import VerifyReport, verify_store
from raw_synth.store.writer import PARTIAL_PREFIX, cleanup_partial, shard_name, write_shard

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "PARTIAL_PREFIX",
    "SUFFIXES",
    "Manifest",
    "SampleRecord",
    "ShardFile",
    "ShardHasher",
    "ShardInfo",
    "ShardStore",
    "VerifyReport",
    "check_record",
    "checksum_columns",
    "cleanup_partial",
    "format_of",
    "manifest_path",
    "normalise_dn",
    "open_shard_file",
    "open_shards",
    "plot_store",
    "preview_grid",
    "records_to_columns",
    "shard_name",
    "summarize_store",
    "verify_store",
    "write_shard",
]
