"""Restore: remove the perturbation from protected recordings
(the remover trained by stage 2 of egs/voice_privacy).

    python -m speechlib.tasks.voice_privacy.restore --model exp/<tag> --in X --out Y

X: a wav/flac file, a directory of them, or a wav.scp; Y: a .wav (single input) or a directory.
"""
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.voice_privacy.cli import main

if __name__ == "__main__":
    exit_on_input_error("voice_privacy.restore", lambda: main("remover", "restore"))
