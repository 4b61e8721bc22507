"""RESULTS.md tables with the paper's numbers beside ours, and the environment they came from."""
