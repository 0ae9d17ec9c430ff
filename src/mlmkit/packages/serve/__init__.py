"""`mlmkit serve`: MLM models and deployed CWL packages as OGC API - Processes, on wraptile's FastAPI server.

wraptile (the eozilla project's server) answers the Part 1 routes and, for a service that is a gavicore
`DruService`, the Part 2 routes (deploy, replace, undeploy); this package is the mlmkit service plugged into it:
`processes` says what can run, `jobs` keeps every job on disk under --state, `worker` runs one job through
mlmkit's engines in a process of its own, `service` answers the routes.
"""
