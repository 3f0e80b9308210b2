"""Use cases. One place per rule; every mutation writes its audit event in the same transaction."""
