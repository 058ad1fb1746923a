"""Identity: who a bearer token belongs to, and the admin token made on first start."""
