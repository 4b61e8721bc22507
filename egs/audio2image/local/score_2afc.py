#!/usr/bin/env python3
"""Score the human 2AFC test: the CSV files exported by exp/<tag>/2afc/index.html -> Table 1.

    local/score_2afc.py answers_rater1.csv answers_rater2.csv [--out exp/<tag>/2afc/human]

One file per rater or repetition (the paper repeated its test 3 times): shares pooled, 95 %
bootstrap CI over sounds, range over the files. The logic lives in speechlib.tasks.audio2image.human.
"""
import runpy

if __name__ == "__main__":
    runpy.run_module("speechlib.tasks.audio2image.human", run_name="__main__", alter_sys=True)
