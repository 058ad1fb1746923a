"""Identity: who a bearer token belongs to, the admin token made on first start, the directory
of users, service principals and groups, and everyone's access tokens."""
