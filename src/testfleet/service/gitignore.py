""".gitignore rules as git applies them during a walk of a project, for :mod:`.archive`'s ``pack``.

The patterns are pathspec's (``GitIgnoreSpec``: git's wildmatch, ``!`` negation, ``dir/`` for
folders only, a leading or middle ``/`` anchoring to the .gitignore's folder). What git adds and
a check of one path alone cannot: a deeper .gitignore overrides a higher one, and nothing under
an ignored folder comes back (the walk does not enter it). Known difference from git: a line
ending in ``**/`` ("d/**/", the folders under d) is read as pathspec reads it, as d itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pathspec
from pathspec.pattern import RegexPattern

from testfleet.errors import UsageError

__all__ = ["Ignores"]

#: the regex group pathspec's gitignore patterns set where a match ends on a folder's "/"
_DIR_MARK = "ps_d"
_Rule = tuple[re.Pattern[str], re.Pattern[str], bool]  # (regex, it ending the path, True: ignore)


def _matches_itself(regex: re.Pattern[str], whole: re.Pattern[str], target: str, is_dir: bool) -> bool:
    """Whether a pattern matches ``target`` itself (a folder ends in "/"), not a folder above it.

    pathspec's regexes are searched (they anchor themselves); a match may end on a folder's "/"
    (the ``ps_d`` group) or, for "d/**" and "*", stop anywhere: "everything from here on".
    """
    found = whole.search(target)
    if found and (found.groupdict().get(_DIR_MARK) or not is_dir):
        return True
    found = regex.search(target)
    # a prefix match that is not a folder's mark: "d/**" matches under d (not d itself), "*" all
    return bool(found and not found.groupdict().get(_DIR_MARK) and found.end() < len(target))


class Ignores:
    """The .gitignore files met on the way down: (folder relative to the root, its rules).
    Start with ``Ignores()``; ``below(folder, rel)`` on entering each folder; ``ignored(rel,
    is_dir)`` for each entry (``rel`` relative to the root, POSIX).

    pathspec's patterns also match everything *under* a matching folder ("b" matches "b/c.py"),
    the right answer when one path is checked alone. The walk checks every folder before its
    contents and never enters an ignored one, so here a rule counts only where it matches the
    path itself: a match that stops at a folder's "/" short of the path's end is skipped (else
    "!b" in a nested .gitignore would re-include every file under a folder b that git leaves
    ignored by another rule), and "d/**" does not match the folder d itself.
    """

    def __init__(self, rules: tuple[tuple[str, list[_Rule]], ...] = ()) -> None:
        self.rules = rules

    def below(self, folder: Path, rel: str) -> Ignores:
        gitignore = folder / ".gitignore"
        if not gitignore.is_file():
            return self
        try:
            lines = gitignore.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read .gitignore: {exc.strerror}", source="archive",
                             place=str(gitignore)) from None
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        rules = [(p.regex, re.compile(f"(?:{p.regex.pattern})\\Z"), bool(p.include)) for p in spec.patterns
                 if isinstance(p, RegexPattern) and p.regex is not None and p.include is not None]
        return Ignores(self.rules + ((rel, rules),)) if rules else self

    def ignored(self, rel: str, is_dir: bool) -> bool:
        ignored = False
        for base, rules in self.rules:  # root first: a deeper .gitignore has the last word
            sub = rel if not base else rel[len(base) + 1:]
            target = sub + "/" if is_dir else sub
            for regex, whole, ignore in rules:  # the last matching line wins
                if _matches_itself(regex, whole, target, is_dir):
                    ignored = ignore
        return ignored
