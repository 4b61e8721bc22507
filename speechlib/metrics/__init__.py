"""Evaluation metrics shared by the recipes (enhancement: SI-SDR, PESQ, STOI, DNSMOS)."""
