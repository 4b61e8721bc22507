"""egs/se_uda: unsupervised domain adaptation for speech enhancement across a large domain gap.

Frenkel, Goldberger & Chazan: a U-Net trained on English LibriSpeech + WHAM! noise (source) is
adapted to non-English DNS-Challenge speech + DNS noise (target) without target clean speech:
domain-adversarial training (DANN), then self-training with source regularisation (SRST),
compared with RemixIT. Stage entry points: prepare, mix, train_source, train_classifier,
train_dann, train_remixit, train_srst, train_target, score, report; user CLI: enhance.
"""
