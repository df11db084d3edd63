"""The static gallery: a data model (model.py), one self-contained HTML page rendered
from it (render.py) with our own CSS/JS inlined, and share.zip (ziparchive.py)."""
