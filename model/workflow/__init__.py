"""The training workflow: from a CSV and a TOML config to a verified artifact and a run record.

The estimator library lives one level up (``model/``) and knows nothing of files, configs or
runs; this package reads data, checks the config against it, trains through the library and
writes what the service loads (``artifact.py``, the first of docs/ARCHITECTURE.md's contracts).
"""
