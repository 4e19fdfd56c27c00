"""Credentials and roles: argon2 passwords, short-lived JWTs, hashed API keys, role permissions."""
