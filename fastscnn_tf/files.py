"""Atomic file writes (a reader, or a resumed run, never sees a half-written output) and the
checks that let a command refuse an unwritable output before it does any work."""

import contextlib
import os
import re
import shutil
import tempfile

# Temporary names: `.tmp-<pid>-<mkstemp's 8 characters>-<target name>`; older versions wrote
# no pid.
_TEMP_NAME = re.compile(r"\.tmp-(?:(\d+)-)?[a-z0-9_]{8}-(.+)")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def stale_temporaries(path):
    """Temporaries of `path` left beside it by writers that were killed (SIGKILL skips every
    clean-up): those whose process is gone, and those of older versions, which wrote no pid."""
    directory = os.path.dirname(os.path.abspath(path))
    target = os.path.basename(path)
    stale = []
    for name in os.listdir(directory):
        match = _TEMP_NAME.fullmatch(name)
        if match and match[2] == target and (match[1] is None or not _running(int(match[1]))):
            stale.append(os.path.join(directory, name))
    return sorted(stale)


def _remove_quietly(path):
    with contextlib.suppress(FileNotFoundError):  # another writer may have cleaned it first
        os.unlink(path)


@contextlib.contextmanager
def atomic_paths(paths):
    """Yield one temporary path beside each of `paths`; when the block succeeds every one
    replaces its target, renamed only after all were written, so the files appear together,
    otherwise they are all removed. A rename that fails midway undoes the ones before it
    (earlier files come back from hard links taken first), so the targets are all new or all
    as they were (bar a kill between the renames). Temporary names keep the target's suffix,
    so writers that pick a format from the name (`.keras`, `.png`, `.weights.h5`) work
    unchanged; stale temporaries of the same targets are removed first."""
    paths, temporaries = [os.fspath(p) for p in paths], []
    try:
        for path in paths:
            temporaries.append(_temporary_beside(path))
        yield list(temporaries)
        mode = 0o666 & ~_umask()  # mkstemp creates 0600; give the usual file mode
        for tmp in temporaries:
            os.chmod(tmp, mode)
        _replace_all(temporaries, paths)
    except BaseException:
        for tmp in temporaries:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise


def _temporary_beside(path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    for stale in stale_temporaries(path):
        _remove_quietly(stale)
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f".tmp-{os.getpid()}-", suffix="-" + os.path.basename(path)
    )
    os.close(fd)
    return tmp


def _replace_all(temporaries, paths):
    """Rename each temporary onto its path; on a failure, put back what was renamed."""
    if len(paths) == 1:
        os.replace(temporaries[0], paths[0])
        return
    backups = {}
    for path in paths:
        if os.path.isfile(path):
            backups[path] = _temporary_beside(path + ".previous")
            try:  # a hard link costs nothing; a copy where the file system has none
                os.link(path, backups[path] + ".link")
                os.replace(backups[path] + ".link", backups[path])
            except OSError:
                shutil.copy2(path, backups[path])
    done = []
    try:
        for tmp, path in zip(temporaries, paths, strict=True):
            os.replace(tmp, path)
            done.append(path)
    except BaseException:
        for path in done:
            if path in backups:
                os.replace(backups.pop(path), path)
            else:
                _remove_quietly(path)
        raise
    finally:
        for backup in backups.values():
            _remove_quietly(backup)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; when the block succeeds it replaces `path` in one
    rename, otherwise it is removed (see `atomic_paths`)."""
    with atomic_paths([path]) as (tmp,):
        yield tmp


def write_bytes_atomic(path, data):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text_atomic(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def check_input_file(path, what="file"):
    """Raise FileNotFoundError if `path` does not exist, ValueError if it is a folder."""
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory, not a file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path} does not exist.")


def _nearest_existing(path):
    """`path` or its closest ancestor that exists (`/` at worst)."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_output_dir(path, option="out"):
    """Raise ValueError, naming the parameter `option`, if the folder `path` cannot be
    created or written: it (or a parent) is a file, or its nearest existing parent is not
    writable."""
    _check_output(path, option, folder=True)


def check_output_file(path, option="output"):
    """Raise ValueError, naming the parameter `option`, if the file `path` cannot be
    written: it is a folder, a parent is a file, or its nearest existing parent is not writable."""
    _check_output(path, option, folder=False)


def _check_output(path, option, folder):
    path = os.fspath(path)
    existing = _nearest_existing(path)
    if existing == os.path.abspath(path):
        if folder and not os.path.isdir(existing):
            raise ValueError(f"{option}={path}: is a file, not a folder.")
        if not folder and os.path.isdir(existing):
            raise ValueError(f"{option}={path}: is a folder, not a file.")
        directory = existing if folder else os.path.dirname(existing)
    elif not os.path.isdir(existing):
        raise ValueError(f"{option}={path}: {existing} is a file, not a folder.")
    else:
        directory = existing
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"{option}={path}: no permission to write in {directory}.")


def save_png_atomic(picture, path):
    """Save a PIL image as PNG through a temporary file (nothing half-written is left)."""
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
