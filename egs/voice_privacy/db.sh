# Corpus and model locations; an empty value means the mini corpus (or: train our own model).
#   LIBRISPEECH=/corpora/LibriSpeech       (train-clean-100, train-clean-360, train-other-500, dev-clean, test-clean)
#   VOXCELEB=/corpora/VoxCeleb             (vox1 wav/ and vox2 aac/ below it: speaker-model training)
#   ECAPA_PRETRAINED_DIR=/models/spkrec-ecapa-voxceleb   (hyperparams.yaml + embedding_model.ckpt)
#   WHISPER_DIR=/models/whisper-small      (a local openai-whisper checkpoint .pt; empty: pocketsphinx)
LIBRISPEECH=${LIBRISPEECH:-}
VOXCELEB=${VOXCELEB:-}
ECAPA_PRETRAINED_DIR=${ECAPA_PRETRAINED_DIR:-}
WHISPER_DIR=${WHISPER_DIR:-}
