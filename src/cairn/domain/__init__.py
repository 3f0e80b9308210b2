"""Records, references, validation and errors: the vocabulary every layer speaks (stdlib only)."""
