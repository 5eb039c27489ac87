"""`make run-scale N=2`: several Rasa servers behind HAProxy, on Rasa's own scale-out stores.

Why this shape: Rasa keeps a conversation in its tracker store and serialises the turns of one
conversation with its lock store. With the SQL tracker store on PostgreSQL and the Redis lock
store (endpoints.scale.yml), any Rasa instance can take any turn of any conversation, so a plain
round-robin balancer in front of them is enough: no sticky sessions for REST. Each Rasa instance
runs its actions in its own process (actions are stateless; escalations go to the shared
PostgreSQL database), so actions scale with the Rasa servers. The web app, the relay and the
timers run once and reach Rasa through the balancer.

Settings (environment): TRACKER_DB_HOST/PORT/NAME/USER/PASSWORD (default 127.0.0.1:5432,
hsg_tracker, postgres), REDIS_HOST/PORT (127.0.0.1:6379), DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/hsg), HSG_RASA_PORT for the balancer (5005).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bot.supervisor import ROOT, Service, _ports, front_services, rasa_service, run

DEFAULTS = {
    "TRACKER_DB_HOST": "127.0.0.1",
    "TRACKER_DB_PORT": "5432",
    "TRACKER_DB_NAME": "hsg_tracker",
    "TRACKER_DB_USER": "postgres",
    "TRACKER_DB_PASSWORD": "",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/hsg",
    # endpoints.scale.yml needs it set; make run-scale runs the actions inside each Rasa server
    "ACTION_ENDPOINT_URL": "http://127.0.0.1:5055/webhook",
}


def scale_env() -> dict[str, str]:
    """The environment with every scale-out setting filled in (the caller's own win)."""
    return {**DEFAULTS, **{k: os.environ[k] for k in DEFAULTS if k in os.environ}}


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in url if it is missing (Rasa and Alembic need it)."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    if not target.drivername.startswith("postgresql"):
        return
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def tracker_url(env: dict[str, str]) -> str:
    password = f":{env['TRACKER_DB_PASSWORD']}" if env["TRACKER_DB_PASSWORD"] else ""
    return (
        f"postgresql://{env['TRACKER_DB_USER']}{password}@{env['TRACKER_DB_HOST']}:"
        f"{env['TRACKER_DB_PORT']}/{env['TRACKER_DB_NAME']}"
    )


def haproxy_config(port: int, backends: list[int], path: Path) -> Path:
    """Round robin over the Rasa instances; a dead instance is taken out by its health check.
    The check waits up to 10 s and needs three misses: a busy server answers /version late but
    is alive, and with the 2 s default both servers of a loaded pair were taken out at once
    (HAProxy then answered patients with 503; `make bench-scale`, 2026-12-01)."""
    servers = "\n".join(
        f"    server rasa{i} 127.0.0.1:{p} check inter 2s fall 3 rise 1" for i, p in enumerate(backends)
    )
    path.write_text(
        "global\n    maxconn 4096\n\n"
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 120s\n    timeout server 120s\n"
        "    timeout check 10s\n"
        "    option redispatch\n    retries 2\n\n"
        f"frontend rasa\n    bind 127.0.0.1:{port}\n    default_backend rasa\n\n"
        "backend rasa\n    balance roundrobin\n    option httpchk GET /version\n"
        f"{servers}\n"
    )
    return path


def scale_services(model: str, instances: int, data_dir: Path) -> list[Service]:
    ports = _ports()
    balancer = ports["rasa"]
    scale_endpoints = {"HSG_ENDPOINTS_TEMPLATE": str(ROOT / "endpoints.scale.yml")}
    out: list[Service] = []
    backends = []
    for i in range(instances):
        rasa_port = balancer + 100 + i
        backends.append(rasa_port)
        out.append(rasa_service(model, rasa_port, None, ports["web"], f"rasa {i}", scale_endpoints))
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    cfg = haproxy_config(balancer, backends, data_dir / "haproxy.cfg")
    balancer_health = f"http://127.0.0.1:{balancer}/version"
    out.append(Service("balancer (haproxy)", [haproxy, "-f", str(cfg), "-db"], health_url=balancer_health))
    return out + front_services(balancer, ports["web"])


def run_scale(model: str, instances: int) -> int:
    env = scale_env()
    os.environ.update(env)  # the children inherit the scale-out settings
    ensure_database(tracker_url(env))
    ensure_database(env["DATABASE_URL"])
    data_dir = Path(os.environ.get("HSG_DATA_DIR") or ROOT / "var")
    data_dir.mkdir(parents=True, exist_ok=True)
    return run(model, procs=scale_services(model, instances, data_dir))
