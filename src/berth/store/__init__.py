"""The store: SQL schema, migrations and repositories. SQLite by default, PostgreSQL to share.

Repositories take and return internal values (frozen dataclasses), never ORM rows, and hold no
business rules: validation lives in the parts that call them.
"""
