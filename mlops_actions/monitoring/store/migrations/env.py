"""alembic's entry point for these migrations: see :func:`mlops_actions.dbschema.run_env`."""

from mlops_actions.dbschema import run_env

run_env()
