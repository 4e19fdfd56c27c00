"""Stored credentials and what they grant: argon2 passwords, hashed API keys, roles, principals."""
