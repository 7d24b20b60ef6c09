"""Split expressions: which examples of a data set a run reads.

    train                 one split
    train+val             several splits, concatenated in that order (as tensorflow-datasets)
    train[0006R0]         the examples whose file stem starts with a prefix (a CamVid sequence)
    train[-0006R0]+val    all but those: hold a whole sequence out
    train[0001TP,0016E5]  several prefixes; `-` items drop, the others keep
    train[@list.txt]      the stems listed in a file (one per line; a path's last part counts,
                          so SegNet's `train.txt` works as it is)

Selections read file names, so they apply to `folder:` data sets; `+` applies to every kind.
Holding out a whole sequence matters on CamVid: its val frames are neighbours of training
frames, so only an unseen sequence says how a recipe does on new streets.
"""

import dataclasses
import os
import re

_TERM = re.compile(r"^([A-Za-z0-9_\-]+)(?:\[([^\[\]]*)\])?$")


@dataclasses.dataclass(frozen=True)
class SplitTerm:
    """One split of an expression and the stems it keeps: those starting with any `keep`
    prefix (all when empty), with no `drop` prefix, and listed in `list_file` if given."""

    name: str
    keep: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    list_file: str | None = None

    @property
    def selects(self):
        return bool(self.keep or self.drop or self.list_file)


def parse_split(expression):
    """`"train[-0006R0]+val"` -> `[SplitTerm("train", drop=("0006R0",)), SplitTerm("val")]`."""
    text = str(expression).strip()
    terms = []
    for part in _split_plus(text):
        match = _TERM.match(part.strip())
        if not match:
            raise ValueError(
                f"split {expression!r}: cannot read {part!r}; expected NAME, NAME[PREFIX,...], "
                "NAME[-PREFIX,...] or NAME[@FILE], joined by '+' (e.g. train[-0006R0]+val)."
            )
        name, selector = match.group(1), match.group(2)
        keep, drop, list_file = [], [], None
        items = [] if selector is None else [i.strip() for i in selector.split(",")]
        if any(not item for item in items):
            raise ValueError(f"split {expression!r}: empty selection item in {part!r}.")
        for item in items:
            if item.startswith("@"):
                if list_file is not None or len(item) == 1:
                    raise ValueError(f"split {expression!r}: one @FILE per split, got {part!r}.")
                list_file = item[1:]
            elif item.startswith("-"):
                if len(item) == 1:
                    raise ValueError(f"split {expression!r}: '-' without a prefix in {part!r}.")
                drop.append(item[1:])
            else:
                keep.append(item)
        terms.append(SplitTerm(name, tuple(keep), tuple(drop), list_file))
    return terms


def _split_plus(text):
    """Split on `+` outside brackets (a list file's path may hold a `+`)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "["
        depth -= char == "]"
        if char == "+" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if any(not p.strip() for p in parts):
        raise ValueError(f"split {text!r}: empty part (expected e.g. train+val).")
    return parts


def read_stem_list(path):
    """The stems a list file names: the first word of each line, its last path part, without
    extension; blank lines and `#` comments are skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the split list ({e.strerror}).") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: the split list is not UTF-8 text.") from None
    stems = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            stems.add(os.path.splitext(os.path.basename(line.split()[0]))[0])
    if not stems:
        raise ValueError(f"{path}: the split list names no file.")
    return stems


def select(stems, term):
    """The stems (in order) that `term` keeps."""
    listed = read_stem_list(term.list_file) if term.list_file else None
    chosen = []
    for stem in stems:
        if term.keep and not stem.startswith(term.keep):
            continue
        if term.drop and stem.startswith(term.drop):
            continue
        if listed is not None and stem not in listed:
            continue
        chosen.append(stem)
    return chosen
