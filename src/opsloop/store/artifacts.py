"""Content-addressed artifact storage: every file is kept under the sha256 of its bytes.

The root is a local folder by default or any fsspec URL (``s3://``, ``memory://``, ...).
A blob lives at ``<root>/<first two hex digits>/<full sha256>``, so equal content is stored
once, and a name can never point at different bytes. Reading recomputes the hash and refuses
bytes that do not match, naming the expected and the found hash: an artifact changed on disk
is never handed to a loader. Writes go to a temporary name first and are renamed into place,
so a crash leaves no half-written blob under a real hash. Bytes that arrive in pieces (an
upload) go through :meth:`ArtifactStore.receive`: written to a local file while hashed, so
no blob is ever held in memory whole.

>>> store = ArtifactStore(tmp_path)
>>> digest = store.put_bytes(b"weights")
>>> digest[:12]
'9a129038d9a0'
>>> store.get_bytes(digest)
b'weights'
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from opsloop.errors import ConflictError, InvalidArgumentError, NotFoundError
from opsloop.store.private_files import private_directory, private_file

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class TamperedArtifactError(ConflictError, ValueError):
    """The bytes stored for an artifact no longer hash to the sha256 they were stored under."""

    def __init__(self, expected: str, found: str, location: str) -> None:
        super().__init__(
            f"artifact {location} is refused: expected sha256 {expected}, found sha256 {found}"
        )
        self.expected = expected
        self.found = found
        self.location = location


class MissingArtifactError(NotFoundError, FileNotFoundError):
    """Nothing is stored under the sha256 (``sha256`` is kept so a server can answer
    without naming the folder it keeps artifacts in)."""

    def __init__(self, sha256: str, root: str | None = None) -> None:
        where = " is stored" if root is None else f" in {root}"
        super().__init__(f"no artifact with sha256 {sha256}{where}")
        self.sha256 = sha256


def check_sha256(value: object, field: str = "sha256") -> str:
    """Return ``value`` if it is 64 lowercase hex digits, else raise naming ``field``.

    >>> check_sha256("ab")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: sha256 must be 64 lowercase hex digits, got 'ab'
    """
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InvalidArgumentError(f"{field} must be 64 lowercase hex digits, got {value!r}")
    return value


def sha256_of_file(path: str | os.PathLike) -> str:
    """The sha256 of a local file, read in 1 MiB chunks.

    >>> p = tmp_path / "x"
    >>> _ = p.write_bytes(b"")
    >>> sha256_of_file(p)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Blobs under their sha256 in a local folder or an fsspec location.

    ``root`` is a path or URL; ``storage_options`` are passed to fsspec (credentials,
    endpoint of an S3-compatible server).

    >>> store = ArtifactStore("memory://doc-artifacts")
    >>> d = store.put_bytes(b"abc")
    >>> store.exists(d), store.size(d)
    (True, 3)
    """

    def __init__(self, root: str | os.PathLike, **storage_options: object) -> None:
        self.root = str(root).rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root, **storage_options)
        self._base = self._base.rstrip("/")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    def path(self, sha256: str) -> str:
        """Where the blob with this hash lives (inside the filesystem of the root).

        >>> ArtifactStore("/tmp/a").path("ab" * 32)
        '/tmp/a/ab/abababababababababababababababababababababababababababababababab'
        """
        check_sha256(sha256)
        return f"{self._base}/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        """Whether a blob with this hash is stored.

        >>> ArtifactStore("memory://doc-empty").exists("0" * 64)
        False
        """
        return bool(self.fs.exists(self.path(sha256)))

    def size(self, sha256: str) -> int:
        """The stored blob's size in bytes.

        >>> store = ArtifactStore("memory://doc-size")
        >>> store.size(store.put_bytes(b"12345"))
        5
        """
        return int(self.fs.size(self.path(sha256)))

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its sha256 (storing equal bytes twice writes once).

        >>> ArtifactStore("memory://doc-put").put_bytes(b"")[:8]
        'e3b0c442'
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not self.fs.exists(target):
            self._write(target, [data])
        return digest

    def put_file(self, path: str | os.PathLike) -> str:
        """Store a local file's content; return its sha256.

        >>> p = tmp_path / "model.bin"
        >>> _ = p.write_bytes(b"abc")
        >>> ArtifactStore("memory://doc-file").put_file(p)[:8]
        'ba7816bf'
        """
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"artifact path {str(source)!r} is not a file")
        digest = sha256_of_file(source)
        target = self.path(digest)
        if not self.fs.exists(target):
            with open(source, "rb") as handle:
                self._write(target, iter(lambda: handle.read(_CHUNK), b""))
        return digest

    def receive(self) -> ArtifactReceiver:
        """A receiver for bytes that arrive in pieces; :meth:`ArtifactReceiver.commit` stores
        them under their sha256. (``artifacts`` is an empty store in a folder.)

        >>> with artifacts.receive() as incoming:
        ...     incoming.write(b"wei"); incoming.write(b"ghts")
        ...     digest = incoming.commit()
        >>> digest == artifacts.put_bytes(b"weights"), incoming.size
        (True, 7)
        """
        return ArtifactReceiver(self)

    def _staging_directory(self) -> str | None:
        # A local root stages in its own folder so the finished file is renamed, not copied.
        if "file" not in _protocols(self.fs):
            return None
        staging = f"{self._base}/.incoming"
        os.makedirs(staging, exist_ok=True)
        return staging

    def _put_staged(self, staged: str, digest: str) -> None:
        target = self.path(digest)
        if self.fs.exists(target):
            return
        if "file" in _protocols(self.fs):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(staged, target)
            return
        with open(staged, "rb") as handle:
            self._write(target, iter(lambda: handle.read(_CHUNK), b""))

    def get_bytes(self, sha256: str) -> bytes:
        """The blob's bytes after checking they still hash to ``sha256``.

        Raises :class:`TamperedArtifactError` (a ``ValueError``) naming both hashes when they
        differ, and ``FileNotFoundError`` when nothing is stored under the hash.

        >>> store = ArtifactStore("memory://doc-get")
        >>> store.get_bytes(store.put_bytes(b"ok"))
        b'ok'
        """
        location = self.path(sha256)
        if not self.fs.exists(location):
            raise MissingArtifactError(sha256, self.root)
        with self.fs.open(location, "rb") as handle:
            data = handle.read()
        found = hashlib.sha256(data).hexdigest()
        if found != sha256:
            raise TamperedArtifactError(sha256, found, location)
        return data

    def get_file(self, sha256: str, destination: str | os.PathLike) -> Path:
        """Copy the verified blob to a local file and return its path.

        >>> store = ArtifactStore("memory://doc-copy")
        >>> out = store.get_file(store.put_bytes(b"x"), tmp_path / "x")
        >>> out.read_bytes()
        b'x'
        """
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.get_bytes(sha256))
        return target

    def _write(self, target: str, chunks) -> None:
        parent = target.rsplit("/", 1)[0]
        local = isinstance(self.fs, LocalFileSystem)
        if local:
            # Models and data are the owner's: folders 0700, blobs 0600, whatever the umask.
            private_directory(parent)
        else:
            self.fs.makedirs(parent, exist_ok=True)
        temporary = f"{target}.{uuid.uuid4().hex}.partial"
        if local:
            private_file(temporary)
        with self.fs.open(temporary, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        # Rename so that a reader never sees a partial file under a real hash.
        self.fs.mv(temporary, target)


def _protocols(fs) -> tuple:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


class ArtifactReceiver:
    """Bytes arriving in pieces, hashed and written to a local temporary file as they come.

    :meth:`commit` stores them under their sha256, or refuses them (a ``ValueError`` naming
    both hashes) when another hash was expected; leaving the ``with`` block without a commit
    removes the temporary file. (``artifacts`` is an empty store in a folder.)

    >>> with artifacts.receive() as incoming:
    ...     incoming.write(b"abc")
    ...     incoming.commit(expected="0" * 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: artifact body: expected sha256 000...000, found sha256...
    """

    def __init__(self, store: ArtifactStore) -> None:
        self._store = store
        handle, self._path = tempfile.mkstemp(
            prefix="upload-", suffix=".partial", dir=store._staging_directory()
        )
        self._file = os.fdopen(handle, "wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def __enter__(self) -> ArtifactReceiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.discard()

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Hash ``chunk`` and append it to the temporary file."""
        self._digest.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def commit(self, expected: str | None = None) -> str:
        """Store the bytes received under their sha256 and return it."""
        self._file.close()
        found = self._digest.hexdigest()
        try:
            if expected is not None and found != expected:
                raise InvalidArgumentError(
                    f"artifact body: expected sha256 {expected}, found sha256 {found}"
                )
            self._store._put_staged(self._path, found)
        finally:
            self.discard()
        return found

    def discard(self) -> None:
        """Remove the temporary file (nothing is stored)."""
        self._file.close()
        if os.path.exists(self._path):
            os.remove(self._path)
