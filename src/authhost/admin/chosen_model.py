"""The artifact an analyst's request names, or the active champion: one refusal for both."""

from __future__ import annotations

import anyio

from authhost.admin.errors import InvalidRequest
from authhost.models.registry import Registry, RegistryError
from authhost.models.scorer import Scorer


async def named_or_champion(registry: Registry, name: str) -> Scorer:
    """The artifact ``name``, or the champion of ``registry``; 422 saying what to do when
    neither is there (the directory named as one: its bare name read as a model's)."""
    try:
        if name:
            scorer = await anyio.to_thread.run_sync(registry.load, name)
        else:
            scorer = (await anyio.to_thread.run_sync(registry.load_active))[0]
    except RegistryError as exc:
        raise InvalidRequest(str(exc)) from None
    if scorer is None:
        raise InvalidRequest(
            f"no active model in the models directory {registry.root} ([models] dir): "
            "activate one (authhost models activate) or name one (--model in the CLI, "
            "?model= in the API)"
        )
    return scorer
