# Corpus locations, one variable per corpus; an empty value means the mini corpus. Each variable
# reaches the prepare stage as the config key of the same name in lower case (db_opts in
# utils/recipe_init.sh): LIBRISPEECH=/corpora/LibriSpeech -> --librispeech /corpora/LibriSpeech.
# The toy recipe generates its own data and reads no corpus.
