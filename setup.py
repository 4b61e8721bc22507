"""speechlib: stage entry points for the recipes under egs/."""
from setuptools import find_packages, setup

# Pinned: torchaudio's compiled extension only loads against the torch it was built for,
# and the GPU machines run exactly this pair.
PINNED = [
    "torch==2.11.0",
    "torchaudio==2.11.0",
    "speechbrain==1.1.2",
]
REQUIRED = PINNED + [
    "numpy>=1.24",
    "scipy>=1.10",
    "soundfile>=0.12",
    "hyperpyyaml>=1.2",
    "tqdm>=4.60",
    "matplotlib>=3.7",
    "tensorboard>=2.14",
    "pesq==0.0.4",
    "pystoi==0.4.1",
    "speechmos>=0.0.1.1",
    "onnxruntime>=1.16",
    "librosa>=0.10",
    "pocketsphinx==5.1.1",
    "amfm-decompy==1.0.12.2",
    # Pretrained models whose weights ship inside their wheels (offline): a real speaker
    # encoder (GE2E) and a quality predictor trained on human ratings (DistillMOS).
    "resemblyzer==0.1.4",
    "distillmos==0.9.1",
    "xls-r-sqa==0.1.0",
    "transformers>=4.40,<6",
    # Voice transforms for the mini corpus pseudo-speakers.
    "pyworld==0.3.5",
    "praat-parselmouth==0.4.7",
    # mushra_gml: gammatone reference and the ViSQOL v3 baseline.
    "gammatone==1.0.3",
    "visqol-python==3.8.0",
    # audio2image: the text tower's unigram tokenizer.
    "sentencepiece==0.2.3",
]
TESTS = ["pytest>=7", "pytest-timeout>=2.1", "pytest-xdist>=3.6", "selenium>=4.20"]

setup(
    name="speechlib",
    version="0.1.0",
    description="Kaldi/ESPnet-style speech research recipes built on SpeechBrain",
    packages=find_packages(include=["speechlib", "speechlib.*"]),
    python_requires=">=3.10",
    install_requires=REQUIRED,
    extras_require={"test": TESTS},
)
