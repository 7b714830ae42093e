"""Huey side of tpod: the queue instance (config.py), the one task that runs a job (tasks.py),
and the client the web process and the CLI use to enqueue and read progress (client.py)."""
