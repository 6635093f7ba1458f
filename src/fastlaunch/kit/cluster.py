"""What the cluster-engine files (`fastlaunch init swarm`, `fastlaunch init nomad`) add to the template context:
replicas, the engines' own spelling of the resources the worker plan sizes, and the rollout timings."""

from __future__ import annotations

from typing import Any

from fastlaunch.kit.project import Project

# Two tasks, so that a rolling update or the loss of one node never leaves none serving; scale with
# `docker service scale` or the job's count.
DEFAULT_REPLICAS = 2
# The edge network between the proxy and the app: FORWARDED_ALLOW_IPS trusts it alone.
EDGE_SUBNET = "172.30.58.0/24"
HEALTH_INTERVAL = 5
HEALTH_RETRIES = 3
CPU_RESERVATION = 0.25
NOMAD_CPU = 500  # MHz reserved per task (Nomad's unit); a busy task may use more when the node has it free
# How often the proxy looks up the app's task addresses; SHUTDOWN_DELAY must be longer.
DNS_REFRESH = 2


def database_scheme(project: Project) -> str | None:
    """The URL scheme of the PostgreSQL server the stack brings, from the driver the project installs (kit/database.py);
    None when the project needs no database server (SQLite, or none) or names another one."""
    database = project.server_database
    return database.scheme if database is not None and database.backend == "postgresql" else None


def cluster_context(project: Project, memory: str) -> dict[str, Any]:
    mebibytes = int(memory.removesuffix("Mi"))
    return {
        "database": database_scheme(project) is not None,
        "database_scheme": database_scheme(project),
        "replicas": DEFAULT_REPLICAS,
        "edge_subnet": EDGE_SUBNET,
        "swarm_memory": f"{mebibytes}M",  # Docker's M is MiB
        "memory_mb": mebibytes,  # Nomad's memory is in MiB
        "swarm_cpu_reservation": str(CPU_RESERVATION),
        "dns_refresh": f"{DNS_REFRESH}s",
        "health_interval": HEALTH_INTERVAL,
        "health_retries": HEALTH_RETRIES,
        # An update fails when a new task turns unhealthy within this window: enough for the retries above.
        "update_monitor": HEALTH_INTERVAL * (HEALTH_RETRIES + 1),
        "db_label": f"{project.name}.db",
        "nomad_cpu": NOMAD_CPU,
    }
