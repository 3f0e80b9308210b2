"""Persistence: SQL tables, migrations, repositories and the search compiler. No HTTP, no UI."""
