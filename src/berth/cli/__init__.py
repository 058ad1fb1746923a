"""The command line: a face over the REST API with no logic of its own (``berth serve`` aside)."""
