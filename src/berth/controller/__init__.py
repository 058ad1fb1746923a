"""The controller: a level-triggered reconciler from desired state (the store) to replicas.

``targets`` reads what should run, ``planner`` decides (a pure function), ``reconciler``
acts through the ``Backend`` protocol and the store, and publishes the data-plane snapshot.
It never serves traffic.
"""
