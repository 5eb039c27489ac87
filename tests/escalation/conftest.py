import pytest

from bot.escalation.db import Database
from bot.escalation.service import Escalations
from bot.escalation.staff import add_staff
from support.databases import PostgresSchema, postgres_available


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'esc.db'}")
        yield db
        db.dispose()
        return
    if not postgres_available():
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable (.ci/run starts it)")
    schema = PostgresSchema()
    db = Database(schema.url)
    yield db
    db.dispose()
    schema.drop()


@pytest.fixture
def service(database):
    return Escalations(database.sessions, resend_after_minutes=10, tell_patient_after_minutes=20)


@pytest.fixture
def nurse(database):
    return add_staff("Nurse Ada", 5551001, "correct horse battery", sessions=database.sessions)
