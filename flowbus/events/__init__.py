"""Event definitions as validators, and immutable event instances."""
