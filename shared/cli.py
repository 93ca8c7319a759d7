"""The ``paperkits`` command: a click root that finds each kit's group lazily through entry points.

User mistakes (any :class:`~shared.errors.PaperkitsError`) become one ``error: …`` line and exit code 2.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click

from shared.errors import PaperkitsError

KIT_ENTRY_POINT_GROUP = "paperkits.kits"
DEFAULT_BUDGET_S = 30 * 60  # the main job's budget on 2 cores (each paper ≤ 6 min), printed with its timings


class UserError(click.ClickException):
    """A user mistake shown as one line; exit code 2 like click's own usage errors."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True, file=file)


def user_errors(func: Callable) -> Callable:
    """Decorator: turn :class:`PaperkitsError` raised by a command into :class:`UserError`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PaperkitsError as err:
            raise UserError(str(err)) from err

    return wrapper


class KitGroup(click.Group):
    """A click group whose commands report :class:`PaperkitsError` as one-line user errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PaperkitsError as err:
            raise UserError(str(err)) from err


class LazyKitGroup(KitGroup):
    """A kit group whose paper commands are imported only when named.

    ``lazy_commands`` maps a command name to ``"module:attribute"``; this keeps ``--help`` fast and lets
    a kit group load without every paper's dependencies.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None or name not in self.lazy_commands:
            return command
        module_name, _, attribute = self.lazy_commands[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:  # the kit's extra is missing (an agents-only install asking for llm, say)
            raise UserError(f"'{self.name} {name}' is not available ({err}); install the kit with: "
                            f"pip install 'paperkits[{self.name}]'") from err
        return getattr(module, attribute)


class LazyRootGroup(KitGroup):
    """The root group: kit sub-groups are imported only when named (so ``--help`` stays fast)."""

    def _kit_points(self) -> dict[str, Any]:
        return {point.name: point for point in entry_points(group=KIT_ENTRY_POINT_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._kit_points()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        point = self._kit_points().get(name)
        if point is None:
            return None
        try:
            return point.load()
        except ImportError as err:
            raise UserError(f"the '{name}' kit is not installed with its dependencies ({err}); "
                            f"install it with: pip install 'paperkits[{name}]'") from err


# Options every kit command shares, defined once.
def seed_option(default: int = 0) -> Callable:
    """``--seed`` (int)."""
    return click.option("--seed", type=int, default=default, show_default=True, help="Random seed.")


def out_option(default: str = "runs") -> Callable:
    """``--out`` (directory where outputs go)."""
    return click.option("--out", type=click.Path(path_type=Path), default=default, show_default=True,
                        help="Output directory.")


def config_option() -> Callable:
    """``--config`` YAML file plus repeated ``--set key=value`` overrides."""

    def decorate(func: Callable) -> Callable:
        func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                            help="Override one config value (repeatable), e.g. --set train.lr=3e-4.")(func)
        return click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
                            help="YAML config file (defaults are used for keys it omits).")(func)

    return decorate


@click.group(cls=LazyRootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paperkits")
def root() -> None:
    """paperkits: ten 2024 papers as installable toolkits (recsys, llm, safety, agents)."""


@root.command("bench")
@click.argument("names", nargs=-1)
@click.option("--profile", type=click.Choice(["quick", "default", "full"]), default="default", show_default=True,
              help="Budget: quick (smoke), default (make bench), full (reported numbers).")
@click.option("--seeds", default=None, help="Comma-separated seeds (default: the benchmark's seeds for the profile).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder (default: results/).")
@click.option("--force", is_flag=True, help="Redo benchmarks whose results already exist.")
@click.option("--list", "list_only", is_flag=True, help="List the registered benchmarks and exit.")
@click.option("--no-report", is_flag=True, help="Do not rebuild REPORT.md afterwards.")
@click.option("--in-process", is_flag=True, hidden=True, help="Run in this process (used by the runner).")
def bench(names: tuple[str, ...], profile: str, seeds: str | None, out: Path | None, force: bool,
          list_only: bool, no_report: bool, in_process: bool) -> None:
    """Run benchmarks (NAMES: benchmark names, kit names, or 'all'; default all)."""
    from shared import benchmarks
    from shared.paths import results_dir
    from shared.report import build_report

    out = Path(out or results_dir()).resolve()  # absolute: benchmarks hand it to libraries that chdir or join paths
    if list_only:
        specs = benchmarks.discover()
        for name, spec in specs.items():
            click.echo(f"{spec.kit:8s} {name:16s} {spec.description}")
        if not specs:
            click.echo("no benchmarks are registered yet")
        return
    seed_list = _parse_seeds(seeds)
    if in_process:
        specs = benchmarks.discover()
        with benchmarks.sigterm_as_interrupt():
            for name in benchmarks.select(names):
                benchmarks.run_benchmark(specs[name], profile=profile, seeds=seed_list, out=out, force=force)
        return
    selected = benchmarks.select(names)
    with benchmarks.sigterm_as_interrupt():
        failures = benchmarks.run_many(selected, profile, seed_list, out, force)
    if not no_report:
        click.echo(f"report: {build_report(out)}", err=True)
    click.echo("\n" + benchmarks.timing_table(selected, out, budget_s=DEFAULT_BUDGET_S if profile == "default"
                                              else None), err=True)
    if failures:
        raise click.ClickException(f"{len(failures)} benchmark(s) failed: {', '.join(failures)}")


@root.command("report")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder (default: results/).")
@click.option("--readme", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also refresh the scoreboard block of this README from the results folder.")
def report(out: Path | None, readme: Path | None) -> None:
    """Rebuild REPORT.md (its claims scoreboard and headline figures) from the results JSON files."""
    from shared.paths import results_dir
    from shared.report import build_report, update_readme

    out = out or results_dir()
    click.echo(build_report(out))
    if readme is not None:
        try:
            click.echo(update_readme(readme, out))
        except ValueError as err:
            raise UserError(str(err)) from err


@root.command("rescore")
@click.argument("names", nargs=-1)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Results folder (default: results/).")
def rescore(names: tuple[str, ...], out: Path | None) -> None:
    """Score the claims of stored results again from their own rows (NAMES as for bench; default all)."""
    from shared import benchmarks
    from shared.paths import results_dir

    for path in benchmarks.rescore(names, out or results_dir()):
        click.echo(f"rescored {path}")


def _parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise UserError(f"--seeds must be comma-separated integers, got {text!r}") from err
    if not seeds or any(s < 0 for s in seeds):
        raise UserError(f"--seeds must list non-negative integers, got {text!r}")
    return seeds


def main() -> None:
    """Console-script entry point."""
    root(prog_name="paperkits")


if __name__ == "__main__":
    main()
