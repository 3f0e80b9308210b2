"""The Python SDK: start runs, log to them, embedded or against a server."""
