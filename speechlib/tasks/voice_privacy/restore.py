"""Restore protected recordings: remove the perturbation with the removal module trained by
stage 2 of egs/voice_privacy (kept apart from the protection model: only its holder can restore).

examples:
  python -m speechlib.tasks.voice_privacy.restore --model exp/mini_voice_privacy --in talk_p.wav --out talk_r.wav
  python -m speechlib.tasks.voice_privacy.restore --model exp/x/model/restore --in protected/ --out restored/

--model is the restoration model directory (exp/<tag>/model/restore) or the experiment dir.
"""
from speechlib.io.errors import exit_on_input_error
from speechlib.tasks.voice_privacy.apply import main

if __name__ == "__main__":
    exit_on_input_error("voice_privacy.restore", lambda: main("restore", __doc__))
