"""``python -m raw_synth_cli``: the ``raw-synth`` command."""

from raw_synth_cli.cli import main

main()
