"""Allow `python -m anomaly_cli`."""

from anomaly_cli.cli import main

main()
