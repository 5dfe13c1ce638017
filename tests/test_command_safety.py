"""The known-safe and dangerous command classifier, on a corpus of commands.

Each line: a command as the agent would send it (a ``bash -lc`` script,
unless it is given as a list), whether it is known safe, and what makes it
dangerous (None: nothing).
"""

from __future__ import annotations

import shlex

import pytest

from corral.approvals import danger, every_command, is_known_safe, plain_commands

S, U = True, False  # known safe, not known safe

CORPUS: list[tuple[str | list[str], bool, str | None]] = [
    # Always safe, alone.
    ("cat README.md", S, None), ("cd src", S, None), ("cut -d, -f1 data.csv", S, None),
    ("echo hello", S, None), ("expr 1 + 2", S, None), ("false", S, None),
    ("grep -rn TODO src", S, None), ("head -n 20 log.txt", S, None), ("id", S, None),
    ("ls -la", S, None), ("nl file", S, None), ("paste a b", S, None), ("pwd", S, None),
    ("rev file", S, None), ("seq 1 10", S, None), ("stat setup.py", S, None),
    ("tail -f log", S, None), ("tr a-z A-Z", S, None), ("true", S, None), ("uname -a", S, None),
    ("uniq -c", S, None), ("wc -l file", S, None), ("which python3", S, None), ("whoami", S, None),
    ("numfmt --to=iec 1048576", S, None), ("tac file", S, None),
    (["ls", "-la"], S, None), (["cat", "a b.txt"], S, None), (["echo", "$(rm -rf /)"], S, None),
    # find: safe unless it runs, deletes or writes.
    ("find . -name '*.py'", S, None), ("find src -type f -newer x", S, None),
    ("find . -name x -delete", U, "find -delete"), ("find . -exec cat {} \\;", U, None),
    ("find . -exec rm -rf {} +", U, "rm -rf"), ("find . -execdir ls \\;", U, None),
    ("find . -ok rm {} \\;", U, None), ("find . -okdir true \\;", U, None),
    ("find . -fls out", U, None), ("find . -fprint out", U, None), ("find . -fprint0 out", U, None),
    ("find . -fprintf out %p", U, None), (["find", ".", "-name", "x", "-delete"], U, "find -delete"),
    # rg: safe unless it runs a program or decompresses.
    ("rg TODO", S, None), ("rg -n --hidden foo src", S, None), ("rg --pre cat foo", U, None),
    ("rg --pre=./evil foo", U, None), ("rg --hostname-bin ./evil x", U, None),
    ("rg -z foo", U, None), ("rg --search-zip foo", U, None), ("rg -iz foo", U, None),
    ("rg --pre-glob '*.gz' foo", S, None), ("rg --search foo", U, None),
    # git: only the subcommands that show, with nothing before them.
    ("git status", S, None), ("git log --oneline -5", S, None), ("git diff HEAD~1", S, None),
    ("git show HEAD", S, None), ("git branch", S, None), ("git branch -a", S, None),
    ("git branch --show-current", S, None), ("git branch new-feature", U, None),
    ("git branch -D old", U, None), ("git -c core.pager=evil log", U, None),
    ("git -C /elsewhere status", U, None), ("git --git-dir=x status", U, None),
    ("git diff --output=patch.txt", U, None), ("git diff --ext-diff", U, None),
    ("git log --output=x", U, None), ("git commit -m x", U, None), ("git add -A", U, None),
    ("git log --outp=x", U, None), ("git diff --ext", U, None), ("git log --oneline", S, None),
    ("git fetch", U, None), ("git push", U, None), ("git checkout main", U, None),
    ("git stash", U, None), ("git reset --hard HEAD", U, "git reset"),
    ("git reset HEAD file", U, "git reset"), ("git rm file", U, "git rm"),
    ("git rm --cached file", U, "git rm"), ("git -C repo reset --hard", U, "git reset"),
    ("git push --force", U, "git push --force"), ("git push -f origin main", U, "git push --force"),
    ("git push --force-with-lease", U, "git push --force"),
    ("git push origin +main", U, "git push --force"), ("git push origin main", U, None),
    ("git clean -fd", U, "git clean -f"), ("git clean -n", U, None),
    # sed: only `sed -n Np FILE` and `sed -n N,Mp FILE`.
    ("sed -n 10p file", S, None), ("sed -n 1,20p file", S, None), ("sed -n '5,9p' file", S, None),
    ("sed -i s/a/b/ file", U, None), ("sed -n 1,20p", U, None), ("sed -n 1w out file", U, None),
    ("sed s/a/b/ file", U, None), ("sed -n 1,20p a b", U, None),
    ("sed -n 1p --expression=1e", U, None), ("sed -n 1p file --expression=1e", U, None),
    ("sed -n -e 1p -e 1e file", U, None), ("sed -n -e 1p -e 5,9p file", S, None),
    ("sed -n --expression=3p -- file", S, None), ("sed -n 1p -i file", U, None),
    ("sed -n -f script.sed file", U, None), ("sed -n 's/a/b/e' file", U, None),
    ("sed -n 1r/etc/passwd file", U, None), ("sed -n 1W/tmp/x file", U, None),
    ("sed -n --expr=1e 1p file", U, None), ("sed -n -e", U, None),
    # base64: safe unless it writes a file.
    ("base64 file", S, None), ("base64 -d blob", S, None), ("base64 -o out file", U, None),
    ("base64 --output out file", U, None), ("base64 --output=out file", U, None),
    ("base64 --out=x file", U, None), ("base64 -do out file", U, None),
    # uniq: safe unless it writes its output file.
    ("uniq -c in", S, None), ("uniq -f 1 in", S, None), ("uniq in out", U, None),
    ("uniq -c -- in out", U, None),
    # Plain scripts: safe only if every command is.
    ("ls && pwd", S, None), ("cat a | grep b | wc -l", S, None), ("ls || echo none", S, None),
    ("cd src; ls; git status", S, None), ("ls -la # list", S, None),
    ("ls && curl x | sh", U, None), ("ls; python3 setup.py", U, None), ("cat x | sh", U, None),
    ("echo a && touch b", U, None), ("grep -r x . | xargs rm", U, None),
    # Redirections, substitutions, subshells, expansions: never known safe.
    ("echo hi > out.txt", U, None), ("cat < in.txt", U, None), ("ls 2>&1", U, None),
    ("echo $(whoami)", U, None), ("echo `whoami`", U, None), ("echo $HOME", U, None),
    ("echo ${HOME}", U, None), ('echo "$HOME"', U, None), ("(ls)", U, None),
    ("{ ls; }", U, None), ("ls &", U, None), ("FOO=1 ls", U, None), ("export A=1", U, None),
    ("cat <<EOF\nhi\nEOF", U, None), ("diff <(ls a) <(ls b)", U, None),
    # Braces, globs and tildes: bash expands them, so what runs is unknown.
    ("rg {--pre=sh,x} a.sh", U, None), ("rg * a.sh", U, None), ("rg x ./--pre=sh?", U, None),
    ("ls [a-z]*", U, None), ("cat ~/.bashrc", U, None), ("echo a={b,c}", U, None),
    ("echo x=~/y", U, None), ("ls {a..c}", U, None), ("ls \\*.py", S, None),
    ("ls '*.py' \"{a,b}\"", S, None),
    ("if true; then ls; fi", U, None), ("for f in *; do cat $f; done", U, None),
    ("while true; do ls; done", U, None), ("ls | tee out", U, None), ("echo 'unterminated", U, None),
    ("", U, None),
    # Dangerous, alone and wherever they hide.
    ("rm -rf build", U, "rm -rf"), ("rm -f file", U, "rm -f"), ("rm -r dir", U, "rm -r"),
    ("rm -fr dir", U, "rm -rf"), ("rm -Rf dir", U, "rm -rf"), ("rm --force x", U, "rm -f"),
    ("rm --recursive x", U, "rm -r"), ("rm file", U, None), ("rm -- -rf", U, None),
    ("rm --rec x", U, "rm -r"), ("rm --forc x", U, "rm -f"),  # getopt takes abbreviations
    ("git clean --fo", U, "git clean -f"), ("git push --force-w", U, "git push --force"),
    ("git push --follow-tags", U, None),
    (["env", "--spl", "rm -rf x"], U, "rm -rf"), (["env", "--split=rm -rf x"], U, "rm -rf"),
    (["env", "-iSrm -rf .", "x"], U, "rm -rf"), (["env", "FOO=BAR_S", "ls"], U, None),
    ("sudo rm -rf /", U, "rm -rf"), ("sudo -u root rm -f x", U, "rm -f"),
    ("sudo -E git reset --hard", U, "git reset"), ("sudo ls", U, None),
    ("sudo sudo rm -rf x", U, "rm -rf"), ("env A=1 rm -rf x", U, "rm -rf"),
    ("env -i rm -rf x", U, "rm -rf"), ("xargs rm -rf", U, "rm -rf"),
    ("xargs -n 1 rm -f", U, "rm -f"), ("nice -n 5 rm -rf x", U, "rm -rf"),
    ("nohup rm -rf x", U, "rm -rf"), ("timeout 5 rm -rf x", U, "rm -rf"),
    ("timeout -s KILL 5 git reset --hard", U, "git reset"), ("command rm -rf x", U, "rm -rf"),
    ("echo $(rm -rf /)", U, "rm -rf"), ("echo `rm -rf /`", U, "rm -rf"),
    ("ls && rm -rf x", U, "rm -rf"), ("(cd x && rm -rf y)", U, "rm -rf"),
    ("true || git push --force", U, "git push --force"), ("ls | xargs rm -f", U, "rm -f"),
    ("if true; then rm -rf x; fi", U, "rm -rf"), ("for f in a; do git rm $f; done", U, "git rm"),
    ('bash -c "rm -rf x"', U, "rm -rf"), ("sh -c 'bash -c \"git rm x\"'", U, "git rm"),
    (["sudo", "rm", "-rf", "/"], U, "rm -rf"), (["/bin/rm", "-rf", "x"], U, "rm -rf"),
    (["/usr/bin/git", "reset", "--hard"], U, "git reset"),
    # Quoting and escapes.
    ("echo 'a b' \"c d\"", S, None), ("grep \"it's\" file", S, None), ("echo a\\ b", S, None),
    ("echo \"a \\\"quoted\\\" b\"", S, None), ("echo '$(rm -rf /)'", S, None),
    ("echo \"\\$HOME\"", S, None), ("ls --color=\"auto\"", S, None), ("ca't' file", S, None),
    # Programs given by path are never known safe (a planted ./ls).
    (["./ls"], U, None), (["/bin/ls"], U, None), ("./ls", U, None),
    # Other wrappers and shells.
    (["sh", "-c", "ls && pwd"], S, None), (["zsh", "-c", "git status"], S, None),
    (["bash", "-l", "-c", "ls"], S, None), (["/bin/bash", "-lc", "ls"], S, None),
    (["bash", "-lc", "rm -rf x"], U, "rm -rf"), (["bash", "script.sh"], U, None),
    (["bash", "-ec", "ls"], S, None), (["bash", "-c", "ls", "arg0", "x"], S, None),
    (["sh", "-c", "-e", "ls"], S, None), (["bash", "--login", "-xc", "ls"], S, None),
    (["bash", "--rcfile", "evil", "-ic", "ls"], U, None),
    (["bash", "-O", "extglob", "-c", "ls"], U, None),
    (["bash", "--", "-c", "ls"], U, None),
    # Dangerous in any shell call, behind any wrapper, and in what eval runs.
    ("env sh -c 'rm -rf ~'", U, "rm -rf"), ("bash -ec 'rm -rf ~'", U, "rm -rf"),
    ("bash -c 'rm -rf ~' x", U, "rm -rf"), ("eval rm -rf x", U, "rm -rf"),
    ("eval 'git reset --hard'", U, "git reset"), ("builtin rm -rf x", U, "rm -rf"),
    ("env -i A=1 -u B sh -xec 'rm -rf ~' a b", U, "rm -rf"), ("env -S 'rm -rf x'", U, "rm -rf"),
    ("env --split-string='rm -f x'", U, "rm -f"), ("time -p rm -rf x", U, "rm -rf"),
    ("exec rm -rf x", U, "rm -rf"), ("setsid rm -rf x", U, "rm -rf"),
    ("xargs sh -c 'rm -rf \"$@\"' _", U, "rm -rf"),
    ("find . -exec sh -c 'rm -rf x' \\;", U, "rm -rf"),
    ("nice -n 5 timeout 3 bash -o pipefail -lc 'eval \"git rm x\"'", U, "git rm"),
    (["env", "sh", "-c", "rm -rf ~"], U, "rm -rf"), (["bash", "-ec", "rm -rf ~", "x"], U, "rm -rf"),
    (["bash", "--rcfile", "r", "-ic", "rm -rf ~"], U, "rm -rf"),
    (["eval", "rm -rf x"], U, "rm -rf"),
    (["python3", "-c", "print(1)"], U, None), (["npm", "test"], U, None),
    (["make"], U, None), (["curl", "https://example.com"], U, None),
]


def _argv(command: str | list[str]) -> list[str]:
    return command if isinstance(command, list) else ["bash", "-lc", command]


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 150


@pytest.mark.parametrize("command,safe,dangerous", CORPUS, ids=[repr(c)[:60] for c, _, _ in CORPUS])
def test_classification(command: str | list[str], safe: bool, dangerous: str | None) -> None:
    argv = _argv(command)
    assert is_known_safe(argv) is safe
    assert danger(argv) == dangerous


def test_plain_scripts_read_as_their_words() -> None:
    assert plain_commands("ls -la && echo 'a b' | grep \"c\\\"d\"; git status") == [
        ("ls", "-la"), ("echo", "a b"), ("grep", 'c"d'), ("git", "status")]
    assert plain_commands("echo $(whoami)") is None
    assert plain_commands("") is None


def test_every_command_is_found_wherever_it_hides() -> None:
    found = every_command("echo $(rm -rf /) && (cd x; git reset --hard) | cat <(ls)")
    assert ("rm", "-rf", "/") in found and ("git", "reset", "--hard") in found
    assert ("ls",) in found


def test_scripts_nested_deeper_than_read_are_dangerous() -> None:
    script = "ls"
    for _ in range(12):
        script = shlex.join(["sh", "-c", script])
    assert danger(["bash", "-lc", script]) == "scripts nested too deep to read"
