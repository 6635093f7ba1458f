"""The connection budget: every pool each worker opens x workers per copy x copies at the peak (replicas, the
autoscaler's maximum, the extra copy a rolling update starts) + the migration, against the connections the
PostgreSQL server accepts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastlaunch.core.urls import backend
from fastlaunch.kit.check.context import Context
from fastlaunch.kit.check.deployment import At
from fastlaunch.kit.check.pools import Pool
from fastlaunch.kit.check.report import Finding, Severity
from fastlaunch.kit.check.server import ServerLimit, configured_limit

# fastlaunch prestart holds a session advisory lock on one connection while Alembic migrates on another.
MIGRATION_CONNECTIONS = 2


@dataclass(frozen=True)
class Demand:
    per_worker: int | None  # None: a pool without a bound
    lines: list[str]


def demand(pools: list[Pool]) -> Demand:
    lines: list[str] = []
    total: int | None = 0
    for pool in pools:
        sizes = " + ".join(f"{name} {size.value}" for name, size in pool.sizes)
        per = pool.per_engine()
        if pool.pool_class == "NullPool":
            lines.append(f"{pool.loc} {pool.call}: NullPool, one connection per request in flight (not counted)")
            continue
        if pool.pool_class in ("StaticPool", "SingletonThreadPool", "AssertionPool"):
            sizes = f"{pool.pool_class}: 1"
        count = "unbounded" if per is None else f"{pool.copies} x ({sizes}) = {pool.copies * per}"
        lines.append(f"{pool.loc} {pool.call}: {count}")
        lines += [f"    {name}: {size.text}" for name, size in pool.sizes if not size.text.startswith("default")]
        if pool.copies > 1:
            lines.append(f"    {pool.copies_text}")
        total = None if total is None or per is None else total + pool.copies * per
    return Demand(total, lines)


def _uses_database(context: Context) -> bool:
    url = context.env.get("DATABASE_URL")  # not set, or set from elsewhere: a server database is assumed
    return url is None or backend(url.value) != "sqlite"


def check_connections(
    group: list[Context], pools_for: Callable[[Context], list[Pool]], server: ServerLimit, *, alembic: bool
) -> tuple[list[str], list[Finding]]:
    """The budget of deployments that share one database (one compose file, or every Kubernetes manifest)."""
    lines: list[str] = []
    findings: list[Finding] = []
    total = 0
    locations: list[str] = []
    webs = [c for c in group if c.deployment.role == "web" and _uses_database(c)]
    counted: list[tuple[Context, int, int]] = []  # (context, per worker, connections)
    for context in webs:
        pools = pools_for(context)
        if not pools:
            continue
        need = demand(pools)
        d = context.deployment
        lines.append(f"connections per worker in {d.name}:")
        lines += [f"  {line}" for line in need.lines]
        locations += [str(p.loc) for p in pools]
        if need.per_worker is None:
            findings.append(
                Finding(
                    "FC102",
                    "warning",
                    "a pool has no bound (max_overflow=-1): the connections grow with the traffic",
                    d.name,
                    need.lines,
                    [str(p.loc) for p in pools],
                    "Give max_overflow a bound (0 to 10).",
                )
            )
            continue
        peak = need.per_worker * context.workers * d.peak
        surge = f" + {d.surge.value} surge ({d.surge.where})" if d.surge.value else ""
        lines.append(
            f"  {need.per_worker} per worker x {context.workers} worker(s) x ({d.replicas.value} replica(s) "
            f"({d.replicas.where}){surge}) = {peak}"
        )
        if context.host_cpus:
            lines.append(f"  ({context.host_cpus})")
        locations += [d.replicas.where] if d.replicas.loc else []
        total += peak
        counted.append((context, need.per_worker, peak))
    if not counted:
        return lines, findings
    migration = MIGRATION_CONNECTIONS if alembic else 0
    if migration:
        jobs = [c.deployment.name for c in group if c.deployment.role == "migrate"]
        lines.append(f"+ {migration} for the migration ({jobs[0] if jobs else 'prestart'}: advisory lock + Alembic)")
        total += migration
    configured: At[int] | None = next(
        (c.deployment.max_connections for c in group if c.deployment.max_connections), None
    )
    limit = configured_limit(configured.value, configured.where) if configured else server
    verdict = ">" if total > limit.usable else "<="
    lines.append(f"= {total} at the peak {verdict} {limit.usable} the server accepts: {limit.text}")
    if total <= limit.usable:
        return lines, findings
    context, per_worker, _ = max(counted, key=lambda item: item[2])
    d = context.deployment
    room = limit.usable - migration - (total - migration - per_worker * context.workers * d.peak)
    copies = room // max(1, per_worker * context.workers)
    pool_fit = room // max(1, context.workers * d.peak)
    fixes = (
        [f"at most {max(0, copies - d.surge.value)} replica(s) (peak {copies} with the surge)"] if copies > 0 else []
    )
    if pool_fit > 0:
        fixes.append(f"pools totalling {pool_fit} connection(s) per worker (pool_size + max_overflow)")
    fixes += ["raise max_connections", "or put PgBouncer in front of PostgreSQL"]
    severity: Severity = "warning" if context.host_cpus else "error"
    title = f"up to {total} database connections at the peak, the server accepts {limit.usable}"
    if context.host_cpus:
        title += " (on a host of this size)"
    findings.append(
        Finding(
            "FC101",
            severity,
            title,
            ", ".join(c.deployment.name for c, _, _ in counted),
            [line.removeprefix("  ") for line in lines if not line.startswith("connections per worker")],
            locations + ([configured.where] if configured else []),
            "Fit the budget: " + ", ".join(fixes) + ". New connections beyond it fail with "
            "'sorry, too many clients already'.",
        )
    )
    return lines, findings
