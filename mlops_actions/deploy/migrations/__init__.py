"""Alembic migrations of this database; run by :func:`mlops_actions.dbschema.upgrade` on open."""
