# Corpus locations, one variable per corpus; an empty value means the mini corpus ($SPEECHLIB_MINI,
# path.sh: the one rule). Each reaches the stages as the config key of the same name in lower case.
LIBRISPEECH=${LIBRISPEECH:-}       # LibriSpeech root (holds train-clean-100/, SPEAKERS.TXT)
FSDKAGGLE2018=${FSDKAGGLE2018:-}   # holds FSDKaggle2018.meta/ and FSDKaggle2018.audio_train/
PNL=${PNL:-}                       # the 100 nonspeech sounds (*.wav; category_map.tsv optional)
NOISEX92=${NOISEX92:-}             # NoiseX-92 *.wav
VCC2018=${VCC2018:-}               # holds vcc2018_listening_test_scores/vcc2018_evaluation_mos.txt or mos_list.txt, and wav/
NISQA=${NISQA:-}                   # NISQA_Corpus root (NISQA_corpus_file.csv, or NISQA_TRAIN_SIM/ etc. with per-set csv)
WAV2VEC2_DIR=${WAV2VEC2_DIR:-}     # local wav2vec 2.0 Base checkpoint (transformers layout)
HUBERT_DIR=${HUBERT_DIR:-}         # local HuBERT Base checkpoint (transformers layout)
DASHENG_DIR=${DASHENG_DIR:-}       # local Dasheng Base checkpoint (the dasheng package's layout)
