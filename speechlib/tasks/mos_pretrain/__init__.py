"""egs/mos_pretrain: noise-aware encoder pre-training for MOS prediction (Sultana & Williamson 2024).

Stages (run.sh): 0 data, 1 noisy pre-training set, 2 PASE systems, 3 masked-encoder systems,
4 PASE+ baseline and DNSMOS, 5 downstream MOS heads on the frozen encoders, 6 tables and figure.
"""
