"""Collections, encoders, exact search, scorers and ir_measures evaluation.

Layer `retrieval` of mta4dpr_core (see config/layers.py): it imports only from itself and the layers below."""
