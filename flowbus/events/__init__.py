"""Event instances (immutable, deeply frozen) and the property types events and inputs are declared with."""
