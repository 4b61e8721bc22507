"""speechlib: the logic behind the recipes in egs/.

Layers (each imports only those above it): io, data, signal, nn, metrics, tasks, results,
launch. Importing the package itself is cheap (no torch), so the launchers in utils/ can use it
outside the virtual environment.
"""
__version__ = "0.1.0"
