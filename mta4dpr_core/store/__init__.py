"""Atomic, checksummed files; content hashes; the code digest that keys every run and cache.

Layer `store` of mta4dpr_core (see config/layers.py): it imports only from itself and the layers below."""
