"""The behavioural scorer: features measured in SQL, an Isolation Forest, risk, episodes, evaluation.

Modules here import numpy and scikit-learn only inside the functions that need them, so that
importing the `behaviour` check (which `anomaly --help` does) costs nothing.
"""
