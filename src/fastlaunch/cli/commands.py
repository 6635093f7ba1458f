"""The ``fastlaunch`` command. Commands only parse input and render errors; the work lives in modules.

Rich is imported only to print a table, help or an error. ``run`` is read by ``fastlaunch.cli.run`` whichever
way it is reached (the console script serves it without loading this module); its entry here forwards to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand, TyperOption

from fastlaunch import __version__
from fastlaunch.cli.errors import rendered_errors
from fastlaunch.cli.run import SUMMARY, run_command
from fastlaunch.core import logs
from fastlaunch.core.exceptions import FastlaunchError
from fastlaunch.core.settings import SETTINGS, Settings, load_here
from fastlaunch.launcher.discover import discover

app = typer.Typer(
    name="fastlaunch",
    help="Take a FastAPI (ASGI) app from a laptop to production.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def main() -> None:
    app()


class WithSettingOptions(TyperCommand):
    """A command that also takes one ``--option`` per setting in the table, as raw strings (so the command line
    is validated exactly like the environment), handed to the command through ``setting_overrides(ctx)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for s in SETTINGS:
            if s.cli:
                # The help is plain text: escape "[" so Rich markup keeps `fastlaunch[metrics]` as written.
                text = f"{s.help} [env: {s.env}]".replace("[", r"\[")
                option = TyperOption(param_decls=[s.cli, s.name], help=text, rich_help_panel=s.section)
                self.params.append(option)

    # Any: the Context class is click's, which recent Typer releases ship inside typer.
    def invoke(self, ctx: Any) -> Any:
        given = {s.name: ctx.params.pop(s.name, None) for s in SETTINGS if s.cli}
        ctx.meta[_OVERRIDES] = {name: value for name, value in given.items() if value is not None}
        return super().invoke(ctx)


_OVERRIDES = "fastlaunch.overrides"


def setting_overrides(ctx: typer.Context) -> dict[str, object]:
    """The settings given on a ``WithSettingOptions`` command's line, by name."""
    return dict(ctx.meta[_OVERRIDES])


# Listed in `fastlaunch --help`; every argument, --help included, goes to the one reader of run's options.
@app.command(
    help=SUMMARY,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
def run(ctx: typer.Context) -> None:
    run_command(ctx.args)


@app.command()
def dev(
    app_: Annotated[Optional[str], typer.Option("--app", help="Import string, e.g. main:app.")] = None,  # noqa: UP045
    host: Annotated[str, typer.Option(help="Address to listen on.", envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", envvar="PORT")] = 8000,
    reload: Annotated[bool, typer.Option("--reload/--no-reload", help="Restart on code changes.")] = True,
) -> None:
    """Serve the app for development: one Uvicorn process on 127.0.0.1:8000 that reloads on changes."""
    import uvicorn

    from fastlaunch.core.validators import Bind
    from fastlaunch.launcher.bind import check_bindable

    with rendered_errors():
        settings = load_here({"app": app_} if app_ else {})
        target = discover(settings)
        check_bindable(Bind("tcp", host=host, port=port), where="--host/--port")
    os.environ["FASTLAUNCH_APP"] = target.import_string
    os.environ["FASTLAUNCH_APP_PATH"] = str(target.path)
    typer.echo(f"fastlaunch dev: serving {target.import_string} ({target.source}) on http://{host}:{port}", err=True)
    uvicorn.run(
        "fastlaunch.worker.importer:dev_factory",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        reload_dirs=[str(settings.project_dir)] if reload else None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=1,  # Ctrl-C must not wait on open keep-alive connections
    )


@app.command(cls=WithSettingOptions)
def workers(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    measure: Annotated[
        bool, typer.Option("--measure/--no-measure", help="Import the app once to measure a worker's memory.")
    ] = True,
) -> None:
    """Show how many workers `fastlaunch run` starts here: every input, its value, where it came from, and
    the arithmetic."""
    from fastlaunch.launcher.gunicorn_app import configured_workers
    from fastlaunch.launcher.serve import gunicorn_conf_path
    from fastlaunch.launcher.workers import measure_worker_rss, plan_for_this_process

    with rendered_errors():
        settings = load_here(setting_overrides(ctx))
        plan = plan_for_this_process(settings)
        target = discover(settings)
        if plan.needs_measurement and measure:
            rss = measure_worker_rss(target)
            if rss:
                plan = plan.with_measured_worker(rss)
        conf = gunicorn_conf_path(settings)
        override = configured_workers(settings, conf)
    if as_json:
        payload = {
            "app": target.import_string,
            "app_source": target.source,
            "workers": override[0] if override else plan.workers,
            "planned_workers": plan.workers,
            "workers_set_by": override[1] if override else "plan",
            "cpus": plan.cpus,
            "cpu_workers": plan.cpu_workers,
            "memory_limit": plan.request.memory_limit and plan.request.memory_limit.value,
            "worker_memory": plan.request.worker_memory and plan.request.worker_memory.value,
            "inputs": [vars(i) for i in plan.inputs],
            "steps": plan.steps,
            "warnings": plan.warnings,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("input", "value", "source", title="Worker plan inputs", title_justify="left")
    for item in plan.inputs:
        table.add_row(item.name, item.value, item.source)
    console = Console(highlight=False)
    console.print(f"App: {target.import_string} ({target.source})", markup=False)
    console.print(table)
    for step in plan.steps:
        console.print(f"  {step}")
    if override:
        console.print(f"  workers = {override[0]}, set by {override[1]}: it overrides the plan", markup=False)
        if conf and override[1].startswith(conf.name) and override[0] > plan.workers:
            console.print(
                f"[yellow]warning:[/] {escape(str(conf))} sets {override[0]} workers, more than the {plan.workers} "
                "this process's CPUs and memory allow; remove `workers` from it to let fastlaunch size the pool."
            )
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


@app.command()
def prestart() -> None:
    """Run only the prestart steps (for an init container or a migration Job), then exit."""
    from fastlaunch.core.secret_files import export_secret_files
    from fastlaunch.prestart.steps import run_prestart

    with rendered_errors():
        settings = load_here()
        export_secret_files(settings)
        logs.configure(settings.log_level, settings.log_format, error_log=settings.error_log)
        run_prestart(settings)


@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the settings reference as Markdown.")] = False,
) -> None:
    """Show every setting's value here and where it came from (secrets masked)."""
    from fastlaunch.core.settings_doc import render_markdown
    from fastlaunch.launcher.worker_class import worker_class

    if markdown:
        typer.echo(render_markdown(), nl=False)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    with rendered_errors():
        settings = load_here()
    table = Table("setting", "env", "value", "source")
    for s in SETTINGS:
        value, source = settings.display(s.name), settings.source(s.name).describe()
        if s.name == "app":
            value, source = resolved_app(settings)
        elif s.name == "worker_class":
            value = worker_class(settings)  # unset: fastlaunch's own, named as Gunicorn loads it
        table.add_row(s.name, s.env or "", escape(value), escape(source))
    Console(highlight=False).print(table)


def resolved_app(settings: Settings) -> tuple[str, str]:
    """What `run` will serve and why, as the settings table shows it; a discovery error, briefly."""
    try:
        target = discover(settings)
    except FastlaunchError as exc:
        return "(none)", exc.message
    return target.import_string, target.source


# -- deployment files: fastlaunch init / fastlaunch lint
@app.command(cls=WithSettingOptions)
def init(
    ctx: typer.Context,
    targets: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs the runtime Optional here
        typer.Argument(
            help="What to write: docker, compose, kubernetes (or k8s), swarm, nomad, server, paas (default: all)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what was detected and what would change.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that differ from the generated ones.")
    ] = False,
    domain: Annotated[str, typer.Option(help="Public host name for the proxy, Ingress and nginx.")] = "example.com",
    image: Annotated[
        str, typer.Option(help="Image name for Kubernetes, Swarm, Nomad and Cloud Run (default: the project name).")
    ] = "",
) -> None:
    """Write deployment files fitted to this project: Dockerfile, compose, Kubernetes, Docker Swarm, Nomad,
    classic server, PaaS.
    Never overwrites a changed file without --force; shows the diff instead."""
    from fastlaunch.kit.project import detect
    from fastlaunch.kit.render import (
        Options,
        compare,
        next_steps,
        notes,
        refuse_overwrites,
        render,
        setting_warnings,
        write,
        write_warnings,
    )
    from fastlaunch.kit.server_pins import pin_warnings

    with rendered_errors():
        settings = load_here(setting_overrides(ctx))
        project = detect(settings)
        files = render(project, settings, targets or [], Options(domain=domain, image=image))
        changes = compare(project.root, files)
        typer.echo("Detected:")
        for key, value in project.summary():
            typer.echo(f"  {key:<13} {value}")
        typer.echo("Files:")
        for change in changes:
            verb = {
                "create": "create",
                "unchanged": "unchanged",
                "merge": "merge",  # the project's own lines kept, ours added: written without --force
                "update": "overwrite" if force else "differs",
            }
            typer.echo(f"  {verb[change.status]:<10} {change.path.relative_to(project.root)}")
        for change in changes:
            typer.echo("".join(change.diff), nl=False)
        for note in notes(project, targets or []):
            typer.echo(f"Note: {note}")
        for warning in setting_warnings(project, targets or []) + write_warnings(project):
            typer.echo(f"Warning: {warning}")
        for warning in pin_warnings(project.root):
            typer.echo(f"Warning: {warning}", err=True)
        if dry_run:
            typer.echo("Dry run: nothing written.")
            return
        if not force:
            refuse_overwrites(changes)
        write(changes)
        typer.echo(f"Wrote {sum(c.status != 'unchanged' for c in changes)} file(s).")
        for step in next_steps(targets or []):
            typer.echo(step)


@app.command()
def lint(
    dockerfile: Annotated[Path, typer.Argument(help="The Dockerfile to check.")] = Path("Dockerfile"),
    context: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs the runtime Optional here
        typer.Option(help="The build context, whose .dockerignore applies (default: the Dockerfile's directory)."),
    ] = None,
    output: Annotated[
        str, typer.Option("--format", help="text, or json (one object: file, findings) for CI.")
    ] = "text",
) -> None:
    """Check a Dockerfile for the mistakes that hurt Python web servers in production; exit 1 when something is
    found. Codes start with FL (hadolint's DL/SC rules are the generic complement)."""
    from fastlaunch.core.exceptions import ExitCode, LintError
    from fastlaunch.kit.lint import lint_file

    if output not in ("text", "json"):
        raise typer.BadParameter(f"{output!r}: use text or json.", param_hint="--format")
    with rendered_errors():
        if not dockerfile.is_file():
            raise LintError(f"No Dockerfile at {dockerfile}.", hint="Pass its path: fastlaunch lint path/Dockerfile")
        if context is not None and not context.is_dir():
            raise LintError(f"No build context directory at {context}.", hint="Pass the directory you build.")
        findings = lint_file(dockerfile, context)
    if output == "json":
        typer.echo(json.dumps({"file": str(dockerfile), "findings": [f.as_dict() for f in findings]}, indent=2))
    else:
        for finding in findings:
            typer.echo(finding.render(str(dockerfile)))
        typer.echo(f"{len(findings)} finding(s)." if findings else f"{dockerfile}: no findings.")
    if findings:
        raise typer.Exit(ExitCode.FINDINGS)


@app.command()
def check(
    output: Annotated[
        str, typer.Option("--format", help="text, or json (one object: deployments, findings, counts) for CI.")
    ] = "text",
    import_app: Annotated[
        bool, typer.Option("--import", help="Import the app once, in a child process, to measure a worker's memory.")
    ] = False,
    cpus: Annotated[
        Optional[int],  # noqa: UP045 - typer needs the runtime Optional here
        typer.Option(min=1, help="CPUs of the hosts where a file sets no CPU limit (default: this machine's)."),
    ] = None,
    ignore: Annotated[
        Optional[list[str]],  # noqa: UP045 - typer needs the runtime Optional here
        typer.Option(help="A finding code to leave out, e.g. FC301 (repeatable)."),
    ] = None,
) -> None:
    """Check the project and its deployment files for what breaks a deploy at scale: database connections,
    memory, probes, grace periods, proxies, ports. Exit 1 on errors, 0 with warnings only."""
    from fastlaunch.core.exceptions import ExitCode
    from fastlaunch.kit.check import measure_host
    from fastlaunch.kit.check.preflight import check_project

    if output not in ("text", "json"):
        raise typer.BadParameter(f"{output!r}: use text or json.", param_hint="--format")
    with rendered_errors():
        settings = load_here()
        host = measure_host(settings, cpus=cpus, import_app=import_app)
        report = check_project(settings.project_dir, settings, host).without(set(ignore or []))
    if output == "json":
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(report.render())
    if report.errors:
        raise typer.Exit(ExitCode.FINDINGS)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fastlaunch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    pass
