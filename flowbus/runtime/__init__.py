"""The in-process runtime: compiled plans, runs, step actions and the engine."""
