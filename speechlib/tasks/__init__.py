"""One package per recipe: its Brain subclasses and stage entry points (`python -m ...`)."""
