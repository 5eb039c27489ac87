"""Alembic environment: the engine comes from bot.store.db (no alembic.ini needed)."""

from alembic import context

from bot.store.models import metadata

engine = context.config.attributes.get("engine")
if engine is None:
    from bot import settings
    from bot.store.db import make_engine

    engine = make_engine(settings.get().database_url)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
