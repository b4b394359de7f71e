"""flowbus: an event-driven flow engine."""
