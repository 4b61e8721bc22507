"""Command line of the data-dir tools: `python -m speechlib.data.cli <verb> ...`.

utils/validate_data_dir.sh, fix_data_dir.sh, split_data.sh, subset_data_dir.sh and
combine_data.sh are thin wrappers around the verbs validate, fix, split, subset and combine, so
that the rules live once, in speechlib.data.datadir. Messages carry the wrapper's name, which is
what the user typed. Bad input is one `<script>: error: <file>:<line>: <what>` line on stderr.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, NoReturn, Sequence

from speechlib.data import datadir
from speechlib.io.errors import die, exit_on_input_error

PROGRAMS = {
    "validate": "validate_data_dir.sh",
    "fix": "fix_data_dir.sh",
    "split": "split_data.sh",
    "subset": "subset_data_dir.sh",
    "combine": "combine_data.sh",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line too, like every other complaint of these tools."""

    def error(self, message: str) -> NoReturn:
        die(self.prog, f"{message} (see {self.prog} --help)", 2)


def _parser(verb: str) -> _Parser:
    prog = PROGRAMS[verb]
    if verb == "validate":
        parser = _Parser(prog=prog, description="Check every rule of a Kaldi data dir; the first "
                         "broken rule is reported as file:line: rule.")
        parser.add_argument("--no-text", action="store_true", help="text is not required")
        parser.add_argument("--no-feats", action="store_true", help="do not check feats.scp "
                            "(never required: features are computed on the fly)")
        parser.add_argument("--no-wav", action="store_true", help="wav.scp is not required")
        parser.add_argument("--skip-audio-check", action="store_true",
                            help="do not open audio (existence, sample rate, segment ends)")
        parser.add_argument("--check-pipes", action="store_true",
                            help="also run the `command |` entries of wav.scp to read their headers")
        parser.add_argument("--multichannel", action="store_true",
                            help="accept recordings with more than one channel (default: mono only)")
        parser.add_argument("dir")
    elif verb == "fix":
        parser = _Parser(prog=prog, description="Keep the utterances present in every file, drop "
                         "unused speakers and recordings, sort, remove repeated keys, regenerate "
                         "spk2utt. Originals are copied to DIR/.backup/ (a later fix: .backup.2/, ...; none is "
                         "ever replaced).")
        parser.add_argument("dir")
    elif verb == "split":
        parser = _Parser(prog=prog, description="Write DIR/splitN/{1..N} (by speaker) or "
                         "DIR/splitNutt/{1..N} (--per-utt); an up-to-date split is reused.")
        parser.add_argument("--per-utt", action="store_true", help="split by utterance")
        parser.add_argument("dir")
        parser.add_argument("parts", type=int, metavar="N")
    elif verb == "subset":
        parser = _Parser(prog=prog, usage=f"{prog} [--first|--last|--per-spk] DIR NUM DEST\n"
                         f"       {prog} --utt-list FILE DIR DEST\n       {prog} --spk-list FILE DIR DEST",
                         description="Write a consistently filtered subset of DIR to DEST. Without "
                         "an option NUM evenly spaced utterances are taken. NUM may also follow the "
                         "option (--first NUM DIR DEST).")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--first", action="store_true", help="the first NUM utterances")
        mode.add_argument("--last", action="store_true", help="the last NUM utterances")
        mode.add_argument("--per-spk", action="store_true", help="up to NUM utterances per speaker")
        mode.add_argument("--utt-list", metavar="FILE", help="the utterances listed in FILE")
        mode.add_argument("--spk-list", metavar="FILE", help="the utterances of the speakers in FILE")
        parser.add_argument("args", nargs="+", metavar="DIR NUM DEST")
    else:
        parser = _Parser(prog=prog, description="Combine data dirs into DEST; utterance ids must be "
                         "unique. Files not in every source are dropped with a warning.")
        parser.add_argument("--extra-files", "--extra_files", default="", metavar="'F1 F2'",
                            help="files that must be in every source (an error otherwise)")
        parser.add_argument("--skip-fix", "--skip_fix", default=None, metavar="BOOL",
                            help="accepted for Kaldi/ESPnet compatibility; combine never runs fix")
        parser.add_argument("dest")
        parser.add_argument("sources", nargs="+", metavar="SRC")
    return parser


def _subset_arguments(parser: _Parser, args: argparse.Namespace) -> dict:
    """Positional forms: `DIR NUM DEST` (Kaldi's order, also after a flag) or `NUM DIR DEST`."""
    if args.utt_list is not None or args.spk_list is not None:
        if len(args.args) != 2:
            parser.error("with --utt-list/--spk-list give DIR DEST")
        source, dest = args.args
        return {"path": source, "dest": dest, "utt_list": args.utt_list, "spk_list": args.spk_list}
    if len(args.args) != 3:
        parser.error("give DIR NUM DEST")
    first, second, third = args.args
    if second.isdigit():
        source, num, dest = first, int(second), third
    elif first.isdigit():
        num, source, dest = int(first), second, third
    else:
        parser.error(f"NUM must be a whole number, got '{second}'")
    mode = "first" if args.first else "last" if args.last else "per_spk" if args.per_spk else "num"
    return {"path": source, "dest": dest, mode: num}


def _run(verb: str, parser: _Parser, args: argparse.Namespace) -> int:
    prog = PROGRAMS[verb]
    if verb == "validate":
        dd = datadir.validate_data_dir(args.dir, check_audio=not args.skip_audio_check,
                                       require_text=not args.no_text, check_feats=not args.no_feats,
                                       require_wav=not args.no_wav, run_pipes=args.check_pipes,
                                       multichannel=args.multichannel)
        rate = f", {dd.sample_rate} Hz" if dd.sample_rate else ""
        print(f"{prog}: {args.dir} is valid ({len(dd)} utterances, {len(dd.speakers)} speakers{rate})")
    elif verb == "fix":
        report = datadir.fix_data_dir(args.dir)
        print(f"{prog}: {report.summary()}")
    elif verb == "split":
        out = datadir.split_data_dir(args.dir, args.parts, per_utt=args.per_utt)
        print(f"{prog}: {out} ready ({args.parts} parts by {'utterance' if args.per_utt else 'speaker'})")
    elif verb == "subset":
        options = _subset_arguments(parser, args)
        count = datadir.subset_data_dir(**options)
        print(f"{prog}: wrote {count} utterances to {options['dest']}")
    else:
        count = datadir.combine_data_dirs(args.dest, args.sources, args.extra_files.split())
        print(f"{prog}: combined {count} utterances from {len(args.sources)} dirs into {args.dest}")
    return 0


def _show_warning(prog: str) -> Callable:
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)
    return show


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in PROGRAMS:
        verbs = ", ".join(PROGRAMS)
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: python -m speechlib.data.cli {{{verbs}}} ... (each verb has --help)")
            raise SystemExit(0)
        die("speechlib.data.cli", f"first argument must be one of {verbs}", 2)
    verb = argv[0]
    parser = _parser(verb)
    args = parser.parse_args(argv[1:])
    warnings.showwarning = _show_warning(PROGRAMS[verb])
    warnings.simplefilter("always", datadir.DataDirWarning)
    exit_on_input_error(PROGRAMS[verb], lambda: _run(verb, parser, args))


if __name__ == "__main__":
    main()
