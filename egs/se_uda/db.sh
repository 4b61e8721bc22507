# Corpus locations, one variable per corpus; an empty value means the mini corpus (make demo).
#   LIBRISPEECH=/corpora/LibriSpeech        (holds train-clean-100/)
#   WHAM=/corpora/wham_noise                (holds tr/ cv/ tt/, or its parent)
#   DNS=/corpora/DNS-Challenge              (holds datasets/clean/<language>/ and datasets/noise/;
#                                            see conf/paper_se_uda.yaml for the sub-directories)
LIBRISPEECH=${LIBRISPEECH:-}
WHAM=${WHAM:-}
DNS=${DNS:-}
