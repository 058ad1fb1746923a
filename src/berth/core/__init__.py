"""Dependency-free building blocks shared by every part, the replica runtime included."""
