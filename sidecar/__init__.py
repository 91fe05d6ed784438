"""A pure-Python stand-in for the part of daprd that the Dapr workflow SDK talks to.

It serves the workflow gRPC API (``TaskHubSidecarService``) of several Dapr app IDs, routes
cross-app activities and child workflows between them as daprd does, and keeps every instance,
event, timer and queued work item in a durable SQLite store. See ``sidecar/README.md``.
"""
