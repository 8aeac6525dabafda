"""``python -m wes_gateway`` is the ``wes-gateway`` command."""

from wes_gateway.cli import main

main()
