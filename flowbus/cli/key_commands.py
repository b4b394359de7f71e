"""``flowbus keys``: API keys of a project, with scopes; stored hashed, shown once."""

from __future__ import annotations

from typing import Any

import click

from flowbus import jsonio
from flowbus.cli.options import closing, db_options, json_option, open_project, print_created, run_async
from flowbus.keys import ApiKey, Scope, new_key


@click.group()
def keys() -> None:
    """API keys: who may ingest, read or administer a project over HTTP."""


@keys.command("create")
@click.option("--name", required=True, help="What the key is for (a service, a person).")
@click.option(
    "--scope", "scopes", multiple=True, required=True, type=click.Choice([s.value for s in Scope]),
    help="ingest (send and publish), read (events and traces), admin (everything else). Repeatable.",
)  # fmt: skip
@json_option
@db_options
def create(name: str, scopes: tuple[str, ...], as_json: bool, db: str, project: str) -> None:
    """Create a key and print its token. The token is shown only this once; keep it secret.

    The token alone goes to stdout (it holds the key's id): TOKEN=$(flowbus keys create ...).

    \b
    Example:
      flowbus keys create --name storefront --scope ingest
    """
    backend = open_project(db, project)
    key, token = new_key(backend.project, name, tuple(Scope(s) for s in scopes))
    run_async(closing(backend, backend.add_key(key)))
    # what a script needs of a new key is its token, which cannot be had again; the id is in it
    human = [f"created key {key.id} for project {backend.project} ({', '.join(key.scopes)}); its token, shown once:"]
    answer = {**_public(key), "token": token}
    print_created([token], human=human, answer=answer, as_json=as_json)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@db_options
def list_keys(as_json: bool, db: str, project: str) -> None:
    """List the project's keys (never their secrets)."""
    backend = open_project(db, project)
    found: list[ApiKey] = run_async(closing(backend, backend.list_keys()))
    if as_json:
        click.echo(jsonio.dumps([_public(key) for key in found]))
        return
    if not found:
        click.echo(f"project {backend.project} has no API keys: flowbus keys create --name NAME --scope SCOPE")
    for key in found:
        state = "revoked" if not key.active else "active"
        click.echo(f"{key.id}  {state:<8} {','.join(key.scopes):<20} {key.name}")


@keys.command("revoke")
@click.argument("key_id")
@db_options
def revoke(key_id: str, db: str, project: str) -> None:
    """Revoke a key at once: requests with it are refused from now on."""
    backend = open_project(db, project)
    if not run_async(closing(backend, backend.revoke_key(key_id))):
        raise click.UsageError(f"no active key {key_id!r} in project {backend.project}")
    click.echo(f"revoked {key_id}")


def _public(key: ApiKey) -> dict[str, Any]:
    """A key's fields but its secret's hash."""
    return {k: v for k, v in key._asdict().items() if k != "secret_hash"}
