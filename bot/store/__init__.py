"""The clinic's database: the engine and sessions (db), the tables (models), their migrations
(Alembic, run on first use) and the append-only audit log (audit). The packages that give the
rows meaning sit on top: bot.escalation (escalations, outbox, relay, timers), bot.patients
(contacts, consent, forgetting), bot.staff (roster, passwords, sessions, login throttle)."""
