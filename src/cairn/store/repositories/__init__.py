"""Repositories: SQL in, domain records out. One module per aggregate."""
