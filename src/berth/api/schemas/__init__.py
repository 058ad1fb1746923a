"""Wire types of the REST API, shaped as Databricks shapes them."""
