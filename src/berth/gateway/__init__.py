"""The data plane: auth from memory, replica choice, forwarding, queueing, timings.

It never reads the store: everything it knows comes from the controller's snapshots.
"""
