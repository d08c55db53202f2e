"""Access: API keys, authentication and what each key may reach (its scope)."""
