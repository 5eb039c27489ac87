import pytest

from bot.escalation.service import Escalations
from bot.staff.roster import add_staff
from support.databases import throwaway_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    with throwaway_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
def service(database):
    return Escalations(database.sessions, resend_after_minutes=10, tell_patient_after_minutes=20)


@pytest.fixture
def nurse(database):
    return add_staff("Nurse Ada", 5551001, "correct horse battery", sessions=database.sessions)
