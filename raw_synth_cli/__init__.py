"""The ``raw-synth`` command line: the top layer, above the applications and the core.

It imports :mod:`pipelines` (``generate``), :mod:`denoise` (``train-denoiser``, ``denoise``,
``eval-sidd``) and :mod:`raw_synth` (everything else); nothing imports it. ``python -m
raw_synth_cli`` runs it like the ``raw-synth`` script.
"""

from raw_synth_cli.cli import main

__all__ = ["main"]
