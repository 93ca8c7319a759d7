"""Click commands of ``paperkits agents``: server, client, and the protocol schema."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from shared.cli import config_option, user_errors
from shared.config import load_config, save_config
from shared.errors import PaperkitsError


@click.command("server")
@config_option()
@click.option("--db", default=None, help="SQLite file (default: the config's db, ioa_server.db).")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 7788, like the original).")
@click.option("--backend", default=None, help="Storage: 'sqlite' (embedded, --db; the default) or "
              "'nats://HOST:PORT' (NATS JetStream: run several servers over the same agents).")
@click.option("--search", type=click.Choice(["fts5", "bm25", "openai"]), default="fts5", show_default=True,
              help="Agent search backend: 'fts5' ranks in SQLite (FTS5 bm25), 'bm25' in Python over every "
                   "profile, 'openai' embeds descriptions with an OpenAI-compatible endpoint.")
@click.option("--embed-url", default="", help="Base URL of the embeddings endpoint (with --search openai).")
@click.option("--embed-model", default="", help="Embedding model name (with --search openai).")
@user_errors
def server(config_path: Path | None, overrides: tuple[str, ...], db: str | None, host: str | None,
           port: int | None, backend: str | None, search: str, embed_url: str, embed_model: str) -> None:
    """Run the IoA server (REST + WebSocket, SQLite persistence, OpenAPI at /docs, live page at /)."""
    from agents_kit.server.app import ServerConfig, run_server
    from agents_kit.server.registry import make_backend

    extra = [f"{k}={v}" for k, v in (("db", db), ("host", host), ("port", port),
                                                 ("backend", backend)) if v is not None]
    config = load_config(ServerConfig, config_path, [*overrides, *extra])
    run_server(config, make_backend(search, base_url=embed_url, model=embed_model))


@click.command("client")
@config_option()
@click.option("--goal", default=None, help="Launch this goal, print the conclusion and exit.")
@click.option("--team", default=None, help="Comma-separated team (skips discovery, like launch_goal's team list).")
@click.option("--depth", "team_up_depth", type=int, default=None, help="team_up_depth for --goal (None = unlimited).")
@click.option("--max-turns", type=int, default=None, help="Soft turn budget for --goal.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait for a conclusion.")
@user_errors
def client(config_path: Path | None, overrides: tuple[str, ...], goal: str | None, team: str | None,
           team_up_depth: int | None, max_turns: int | None, timeout: float) -> None:
    """Run an agent from agent.yaml: register, connect, take part in chats (and optionally launch a goal)."""
    from agents_kit.client.config import ClientConfig, build_client, save_token

    if config_path is None:
        raise PaperkitsError("--config agent.yaml is required (see `paperkits agents client --help`)")
    config = load_config(ClientConfig, config_path, overrides)

    async def main() -> None:
        agent = build_client(config)
        await agent.start()
        save_token(config, agent.connection.token or "")
        click.echo(f"{agent.name} connected to {config.server.url}", err=True)
        try:
            if goal is None:
                await asyncio.Event().wait()  # serve until interrupted
            members = [t.strip() for t in team.split(",") if t.strip()] if team else None
            comm_id, conclusion = await agent.launch_goal(goal, members, team_up_depth, max_turns, timeout=timeout)
            click.echo(json.dumps({"comm_id": comm_id, "conclusion": conclusion}, indent=2))
        except TimeoutError as err:
            raise PaperkitsError(str(err)) from err
        finally:
            await agent.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


@click.command("schema")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the JSON Schema here.")
def schema(out: Path | None) -> None:
    """Print (or write) the JSON Schema of protocol ioa/1."""
    from agents_kit.protocol import json_schema

    text = json.dumps(json_schema(), indent=2)
    if out is None:
        click.echo(text)
    else:
        from shared.results import atomic_write_text

        atomic_write_text(out, text)


@click.command("init-config")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Agent name.")
@click.option("--desc", default="", help="What the agent can do (searched by others).")
def init_config(path: Path, name: str, desc: str) -> None:
    """Write a starter agent.yaml."""
    from agents_kit.client.config import ClientConfig

    config = ClientConfig()
    config.agent.name, config.agent.desc = name, desc
    save_config(config, path)
    click.echo(f"wrote {path}")
