"""Model files: which kind a file is, what it declares about itself, and the runtime that runs it."""
