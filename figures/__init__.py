"""The drawing layer shared by every world: one look for all figures, and figures to files.

``style``: the colours of methods and betas, seed bands, heat maps, the rcParams of every
figure. ``laws``: the divergence-laws figure (long GA-vs-NPO runs) any world can draw.
``files``: figures to PNG and PDF, animations to GIF, written atomically. Each world's own
figures live in its package (``synthetic/worlds/<world>/figures.py``); nothing here trains.
"""
