"""Storage backends behind small protocols."""
