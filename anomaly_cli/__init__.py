"""anomaly: a command-line auditor that finds anomalies in transaction databases."""

__version__ = "0.1.0"
