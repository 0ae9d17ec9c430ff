"""CWL application packages: the package an MLM Item names, its release copies, staging, and the engines that run it."""
