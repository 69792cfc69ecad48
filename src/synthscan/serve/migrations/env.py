"""Alembic environment: runs on the connection `synthscan.serve.history.migrate` passes in."""

from alembic import context

from synthscan.serve.history import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
