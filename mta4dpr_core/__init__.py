"""MTA4DPR: multi-teaching-assistants iterative knowledge distillation for dense passage retrieval."""

__version__ = "0.1.0"
