"""The companion RAW denoiser: a 4-channel SSDNet trained on raw-synth shards and scored on SIDD.

This package grows with the denoiser issues (model, ``ShardDataset``, training loop, SIDD
evaluation). It shares the building blocks of :mod:`raw_synth.models`.
"""
