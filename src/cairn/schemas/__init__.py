"""Wire models shared by the REST API and the HTTP client (pydantic)."""
