"""Protect recordings: add the speaker-hiding perturbation learned by stage 2 of egs/voice_privacy.

examples:
  python -m speechlib.tasks.voice_privacy.protect --model exp/mini_voice_privacy --in talk.wav --out talk_p.wav
  python -m speechlib.tasks.voice_privacy.protect --model exp/x/model/protect --in recordings/ --out protected/
  python -m speechlib.tasks.voice_privacy.protect --model exp/x --in data/test/wav.scp --out protected/ --format flac

--model is the protection model directory (exp/<tag>/model/protect) or the experiment dir.
"""
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.voice_privacy.apply import main

if __name__ == "__main__":
    exit_on_input_error("voice_privacy.protect", lambda: main("protect", __doc__))
