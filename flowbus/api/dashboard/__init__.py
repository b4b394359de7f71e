"""The dashboard: server-rendered pages over the same backends as the API, at ``/``.

Each page is a Jinja template rendered here; htmx (vendored in ``static/``) swaps in fragments
for the live parts. Routes sit in one mount placed after the API's, so the API's paths win.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from flowbus.api.dashboard import config, dead_letters, entities, events, overview, queues, runs, signin


def routes() -> list[BaseRoute]:
    """The dashboard's routes; pages under ``/p/{project}/``."""
    project = "/p/{project}"
    return [
        Route("/", signin.signin_page, methods=["GET"]),
        Route("/signin", signin.signin, methods=["POST"]),
        Route(f"{project}/signout", signin.signout, methods=["POST"]),
        Route(f"{project}/", overview.overview, methods=["GET"]),
        Route(f"{project}/runs", runs.runs_page, methods=["GET"]),
        Route(f"{project}/runs/newer", runs.newer_runs, methods=["GET"]),
        Route(f"{project}/runs/retry", runs.retry_runs, methods=["POST"]),
        Route(f"{project}/runs/{{run_id}}", runs.run_page, methods=["GET"]),
        Route(f"{project}/events", events.events_page, methods=["GET"]),
        Route(f"{project}/events/match", events.match_page, methods=["GET"]),
        Route(f"{project}/events/{{event_id}}", events.event_page, methods=["GET"]),
        Route(f"{project}/events/{{event_id}}/send-again", events.send_again, methods=["POST"]),
        Route(f"{project}/queues", queues.queues_page, methods=["GET"]),
        Route(f"{project}/entities", entities.entities_page, methods=["GET"]),
        Route(f"{project}/dead-letters", dead_letters.dead_letters_page, methods=["GET"]),
        Route(f"{project}/dead-letters/redrive", dead_letters.redrive, methods=["POST"]),
        Route(f"{project}/dead-letters/{{message_id}}", dead_letters.dead_letter_page, methods=["GET"]),
        Route(f"{project}/config", config.config_page, methods=["GET"]),
        Route(f"{project}/config/diff", config.diff_page, methods=["GET"]),
        Route(f"{project}/config/draft", config.save_draft, methods=["POST"]),
        Route(f"{project}/config/versions/{{number}}/rollback", config.roll_back, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("flowbus.api.dashboard", "static")]), name="static"),
    ]


#: the paths the dashboard owns; every other path stays the API's (its 404s and 405s included)
_OWN = re.compile(r"^/($|signin$|p/|static/)")


class _Pages(Mount):
    """A mount at the root that claims only the dashboard's own paths. A router, not an app, so
    that its refusals go through the API's exception handlers."""

    def matches(self, scope: Scope) -> tuple[Match, MutableMapping[str, Any]]:
        if not _OWN.match(scope.get("path", "")):
            return Match.NONE, {}
        return super().matches(scope)


def mount() -> Mount:
    return _Pages("", routes=routes(), name="dashboard")


__all__ = ["mount", "routes"]
