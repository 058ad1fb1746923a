"""``python -m berth``: the same as the ``berth`` command."""

from berth.cli.main import main

main()
