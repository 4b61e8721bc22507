"""egs/mushra_gml: the Generative Machine Listener (Jiang, Villemoes & Biswas): a network trained
on individual MUSHRA scores of (reference, coded) stereo pairs predicts a score distribution,
hence the mean score, its confidence interval for N listeners, and simulated listening tests.

Stages: prepare (real per-listener corpora) -> simulate (mini MUSHRA tests with a simulated
panel) -> features (gammatone L/R/M/S pairs) -> train (5 systems) -> visqol -> score; and the
user command `predict`.
"""
