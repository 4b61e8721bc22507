# Corpus locations, one variable per corpus; an empty value means the mini corpus (make demo).
# The toy recipe generates its own data and reads no corpus; real recipes list theirs here, e.g.
#   LIBRISPEECH=/corpora/LibriSpeech
MINI=${MINI:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/mini}
