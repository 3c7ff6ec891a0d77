"""The profile schema and its checks, model-name resolution, numeric precision, progress lines.

Layer `config` of mta4dpr_core (see config/layers.py): it imports only from itself and the layers below."""
