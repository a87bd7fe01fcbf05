"""Card stores: the CardStore protocol, and ``open_store(url)`` to pick a backend."""

from authhost.store.opener import BadStoreUrl, open_store, opened_store

__all__ = ["BadStoreUrl", "open_store", "opened_store"]
