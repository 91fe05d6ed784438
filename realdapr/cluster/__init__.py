"""The shop on real Dapr across simulated hosts (``make run-cluster``): Linux network namespaces on a bridge, one
for the control plane, one for PostgreSQL and one per pod, N nodes each running one replica of every app with its
own daprd, everything derived from deploy/'s rendered manifests.

Modules: ``netns`` (the network and the blows a host takes), ``injector`` (annotations -> daprd), ``topology``
(manifests -> what runs), ``plan`` (command lines), ``database`` (PostgreSQL on the database host), ``proxy`` (one
loopback address per app), ``heal`` (placement's split brain after a partition), ``run`` (supervision), ``state``
(what other processes read of a running cluster, and the blows they strike), ``launch`` (a cluster started by the
tests, chaos and the benchmark).
"""
