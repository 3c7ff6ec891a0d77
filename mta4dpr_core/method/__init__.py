"""The paper's algorithms: losses, fusion, selection, temperatures, data construction, training.

Layer `method` of mta4dpr_core (see config/layers.py): it imports only from itself and the layers below."""
