# Corpus locations, one variable per corpus; an empty value means the mini corpus (simulated panel).
# Each variable reaches the stages as the config key of the same name in lower case
# (db_opts in utils/recipe_init.sh): ODAQ=/corpora/ODAQ/ODAQ_results -> --odaq /corpora/...
#   ODAQ=          ODAQ listening-test results: a folder of MUSHRA XML files, one per listener
#   ODAQ_AUDIO=    ODAQ audio: the folder holding one <trialName>/ folder per trial
#   WEBMUSHRA=     a webMUSHRA results file, results/<testId>/mushra.csv
#   LISTENING_CSV= the generic per-listener CSV (speechlib/data/listening_tests.py)
#   MUSIC48K=      48 kHz stereo music for the simulated mini tests (default: the mini corpus's music48k/)
# With real data, set test_roles in the config (test name -> train | mono_low | stereo_low | ...).
ODAQ=${ODAQ:-}
ODAQ_AUDIO=${ODAQ_AUDIO:-}
WEBMUSHRA=${WEBMUSHRA:-}
LISTENING_CSV=${LISTENING_CSV:-}
MUSIC48K=${MUSIC48K:-}
