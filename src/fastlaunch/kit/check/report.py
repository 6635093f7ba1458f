"""What ``fastlaunch check`` found: each finding with its arithmetic, the files and lines involved and the fix,
as text for a person or JSON for CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]

# Every finding's code and what it is about (the docs page lists them from here).
CODES = {
    "FC001": "a deployment's settings are invalid",
    "FC101": "database connections: the peak exceeds what the server accepts",
    "FC102": "database connections: a pool without a bound",
    "FC201": "memory: the workers do not fit the memory limit",
    "FC301": "a probe or health check asks for a path the app does not serve",
    "FC302": "the grace period before SIGKILL is shorter than GRACEFUL_TIMEOUT + SHUTDOWN_DELAY",
    "FC303": "FORWARDED_ALLOW_IPS does not trust the proxy in front (or trusts every address)",
    "FC304": "traffic or a probe goes to a port the app does not listen on",
    "FC305": "WEB_CONCURRENCY runs more workers than the CPU limit gives CPUs",
    "FC306": "a probe gives up before STARTUP_TIMEOUT: the app is restarted while it starts",
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    title: str
    deployment: str
    arithmetic: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)  # "file:line", or "file:line (default)"
    fix: str = ""

    def __post_init__(self) -> None:
        # A platform default has no line to point at; the arithmetic names it.
        object.__setattr__(self, "locations", [x for x in dict.fromkeys(self.locations) if x != "default"])

    def render(self) -> str:
        lines = [f"{self.severity}: {self.code} {self.title}", f"  in {self.deployment}"]
        lines += [f"  {step}" for step in self.arithmetic]
        if self.locations:
            lines.append(f"  where: {', '.join(self.locations)}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


@dataclass
class Section:
    """One deployment's inputs and arithmetic, shown whether or not something was found."""

    title: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Report:
    project: str
    read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def without(self, codes: set[str]) -> Report:
        kept = [f for f in self.findings if f.code not in codes]
        return Report(self.project, self.read, self.notes, self.sections, kept)

    def render(self) -> str:
        lines = [f"Project: {self.project}", f"Read: {', '.join(self.read) or 'no deployment files'}"]
        lines += [f"Note: {note}" for note in self.notes]
        for section in self.sections:
            lines += ["", section.title, *(f"  {line}" for line in section.lines)]
        if self.findings:
            lines.append("")
        for finding in sorted(self.findings, key=lambda f: (f.severity != "error", f.code)):
            lines += [finding.render(), ""]
        lines.append(f"{self.errors} error(s), {self.warnings} warning(s).")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "read": self.read,
            "notes": self.notes,
            "deployments": [asdict(s) for s in self.sections],
            "findings": [asdict(f) for f in self.findings],
            "errors": self.errors,
            "warnings": self.warnings,
        }
