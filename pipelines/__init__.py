"""The Dask generation pipeline behind ``raw-synth generate``: planning samples into shards,
worker setup, local and distributed clusters, and resume."""
