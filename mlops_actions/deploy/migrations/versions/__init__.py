"""One file per schema revision (alembic skips this file)."""
