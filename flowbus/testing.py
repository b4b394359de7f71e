"""A public testing API: run flows in pytest with no server and no database.

::

    from flowbus.testing import entities, memory_engine

    async def test_a_good_order_awards_points():
        engine = await memory_engine("flowbus.yaml", seed={"Customer": [{"id": "c1", "name": "Ada"}]})
        run = await engine.run_flow("CreateOrder", {...})
        await engine.drain()
        points = entities(engine, "Customer")["c1"]["loyalty_points"]  # 50: the first-order bonus
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flowbus.config.loader import LoadedConfig, load_config
from flowbus.config.model import StoreTarget
from flowbus.config.plan import DEFAULT_KEY
from flowbus.engine import Engine
from flowbus.errors import FlowbusError
from flowbus.runtime.bounds import RuntimeLimits
from flowbus.runtime.changes import Record
from flowbus.stores.memory import MemoryBackend

__all__ = ["MemoryBackend", "entities", "memory_engine", "seed_entities"]


async def memory_engine(
    config: str | Path | LoadedConfig,
    *,
    seed: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    limits: RuntimeLimits | None = None,
) -> Engine:
    """An engine on a fresh in-memory backend, with ``seed`` records already committed."""
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    engine = Engine(loaded, backend=MemoryBackend(loaded.config.project.name), limits=limits)
    if seed:
        await seed_entities(engine, seed)
    return engine


async def seed_entities(engine: Engine, records: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    """Commit entity records (entity name -> list of records) in one unit of work; returns the count.

    Each record is keyed by its entity's key field (the store target's ``keys``, else ``id``).
    """
    target = engine.plan.targets.get("store")
    keys = target.keys if isinstance(target, StoreTarget) else {}
    uow = engine.begin()
    count = 0
    for entity, rows in records.items():
        field = keys.get(entity, DEFAULT_KEY)
        for index, row in enumerate(rows):
            key = row.get(field) if isinstance(row, Mapping) else None
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise FlowbusError(f"seed {entity}[{index}]: a record needs its key field {field!r}")
            await uow.put(entity, str(key), row)
            count += 1
    await uow.commit()
    return count


def entities(engine: Engine, entity: str) -> dict[str, Record]:
    """The committed records of ``entity`` by key (the engine must run on a :class:`MemoryBackend`)."""
    backend = engine.backend
    if not isinstance(backend, MemoryBackend):
        raise FlowbusError("entities() reads a MemoryBackend; this engine runs on another backend")
    return backend.records(entity)
