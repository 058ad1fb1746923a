"""The control-plane REST API: endpoints, models, tokens; validation and error mapping.

It never touches a replica or a socket: it writes desired state to the store and reads
observed state back.
"""
