"""Backends run replicas: one protocol, several engines (``local`` child processes, later Ray).

A backend knows replica specs and processes, never HTTP routes or endpoint configs.
"""
