# Corpus locations, one variable per corpus (run.sh passes each as the config key of the same name
# in lower case); empty means the mini corpus ($SPEECHLIB_MINI, else mini/ at the repository root).
#   VGGSOUND_CSV=/corpora/vggsound/vggsound.csv     (id, start seconds, label, split; no header)
#   VGGSOUND_VIDEOS=/corpora/vggsound/video         (<id>_<start 6 digits>.mp4)
# Pretrained weights (nothing can be downloaded here) are config keys: brivl_checkpoint,
# wavlm_dir, vqgan_checkpoint (see conf/paper_audio2image.yaml).
VGGSOUND_CSV=${VGGSOUND_CSV:-}
VGGSOUND_VIDEOS=${VGGSOUND_VIDEOS:-}
