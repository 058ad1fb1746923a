"""The model registry: models, versions, artifacts; detects and validates artifact formats.

It never loads a model: it only reads the files that describe one.
"""
