"""Local SQLite store: models, the one session factory, outbox capture."""
