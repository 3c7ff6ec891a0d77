"""Tables, statistics, claims, figures, the walk-through, the paper's numbers, the notebook stages.

Layer `report` of mta4dpr_core (see config/layers.py): it imports only from itself and the layers below."""
