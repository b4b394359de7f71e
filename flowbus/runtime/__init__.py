"""The runtime: runs a compiled plan into units of work. The runner, run contexts, step actions,
the changes a run hands to storage, and the bounds it keeps to; it imports no store."""
