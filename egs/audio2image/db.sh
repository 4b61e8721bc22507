# Corpus and pretrained-model locations, one variable per item; empty means the mini corpus and
# stand-ins trained in earlier stages (make demo).
#   VGGSOUND_CSV=/corpora/vggsound/vggsound.csv     (id, start seconds, label, split; no header)
#   VGGSOUND_VIDEOS=/corpora/vggsound/video         (<id>_<start 6 digits>.mp4)
# Pretrained weights (nothing can be downloaded here; set them in conf/paper_audio2image.yaml):
#   brivl_checkpoint, wavlm_dir, vqgan_checkpoint
MINI=${SPEECHLIB_MINI:-${MINI:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/mini}}
VGGSOUND_CSV=${VGGSOUND_CSV:-}
VGGSOUND_VIDEOS=${VGGSOUND_VIDEOS:-}
