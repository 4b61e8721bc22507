"""The toy recipe (egs/toy): the template every recipe follows.

Task: tell the colour of synthetic noise (white, pink, brown) from its mean log-mel spectrum
with a linear model. Small enough to train in seconds on a CPU, yet it exercises every piece of
the foundation: data dirs, the Brain class with a Checkpointer (resume after a kill), results.
"""
