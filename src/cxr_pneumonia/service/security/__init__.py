"""HTTP credentials: short-lived JWTs for interactive users (passwords and API keys live in store.security)."""
