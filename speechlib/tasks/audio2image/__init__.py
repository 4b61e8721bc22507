"""egs/audio2image: WavBriVL (Fang et al.), audio aligned to a frozen image tower, images from sound.

Stages: prepare (0), pretrain the image-text model (1), WavBriVL (2), Wav2CLIP (3), retrieval
and classification (4), VQGAN + generation (5), the 2AFC test (6). User commands: `generate`
(sound -> picture) and `retrieve` (sound -> top-k pictures of a gallery).
"""
