"""Replay the stored history through the feature engine and the model (``cif replay``).

Offline (in-process), into Redis (republish), and verification of a live run by digest.
"""
