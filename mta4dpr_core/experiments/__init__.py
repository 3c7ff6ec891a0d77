"""The prepared Setup, Algorithm 1's iterations, the run grid, the teacher choice, export.

Layer `experiments` of mta4dpr_core (see config/layers.py): it imports only from itself and the layers below."""
