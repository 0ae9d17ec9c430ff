"""Model files: which kind a file is (`artifacts`), and the runtime of each kind (`registry`) that reads and runs it."""
