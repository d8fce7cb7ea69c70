"""The snapshot's transport through the agent's pod: base64 cut anywhere, size and SHA-256
checked, and a name that holds either the whole file or nothing."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest

from chaoskit.agent import files as harness
from chaoskit.agent.nodeagent import files


def _pieces(text: bytes, width: int) -> list[bytes]:
    return [text[i : i + width] for i in range(0, len(text), width)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 3 * 7 + 1, 1000])
@pytest.mark.parametrize("width", [1, 5, 7, 4096])
def test_base64_cut_anywhere_decodes_to_the_same_bytes(size: int, width: int) -> None:
    data = bytes(range(256)) * 4
    data = data[:size]
    text = b"".join(files.encode(io.BytesIO(data), piece=6))
    assert len(text) == files.encoded_length(size)
    assert text == base64.b64encode(data)  # pieces of 3n bytes: no padding but at the end
    out = io.BytesIO()
    decoder = files.Decoder(out)
    for piece in _pieces(text, width):
        decoder.feed(piece)
    decoder.finish(size, hashlib.sha256(data).hexdigest())
    assert out.getvalue() == data


def test_a_piece_size_that_is_not_a_multiple_of_3_is_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 3"):
        list(files.encode(io.BytesIO(b"abcd"), piece=4))


def test_a_wrong_digest_size_or_a_truncated_text_fails() -> None:
    data = b"every secret"
    text = base64.b64encode(data)
    sha = hashlib.sha256(data).hexdigest()
    decoder = files.Decoder(io.BytesIO())
    decoder.feed(text[:-1])
    with pytest.raises(files.TransferFailed, match="truncated"):
        decoder.finish(len(data), sha)
    decoder = files.Decoder(io.BytesIO())
    decoder.feed(text)
    with pytest.raises(files.TransferFailed, match="expected 13 bytes"):
        decoder.finish(len(data) + 1, sha)
    with pytest.raises(files.TransferFailed, match="SHA-256"):
        decoder.finish(len(data), hashlib.sha256(b"other").hexdigest())
    with pytest.raises(files.TransferFailed, match="not base64"):
        files.Decoder(io.BytesIO()).feed(b"ab!d")


def test_receive_keeps_the_file_only_when_it_is_whole(tmp_path: Path) -> None:
    data = bytes(range(200)) * 50
    sha = hashlib.sha256(data).hexdigest()
    text = base64.b64encode(data)
    target = tmp_path / "drill" / "snapshot-abc.db"

    with pytest.raises(files.TransferFailed, match="ended"):
        files.receive(io.BytesIO(text[:-10]), target, len(data), sha)
    assert not target.exists()
    with pytest.raises(files.TransferFailed, match="SHA-256"):
        files.receive(io.BytesIO(base64.b64encode(data[::-1])), target, len(data), sha)
    assert not target.exists()

    # Exactly the file's length is read: what follows on stdin is not its business.
    files.receive(io.BytesIO(text + b"trailing"), target, len(data), sha)
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["snapshot-abc.db"]  # no .part


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a/b", ".hidden", "x" * 200])
def test_only_plain_names_in_the_drill_folder(name: str) -> None:
    with pytest.raises(files.TransferFailed, match="not a plain file name"):
        files.resolve(name)


def test_the_node_side_digest_and_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.setattr(files, "FILES_DIR", tmp_path)
    monkeypatch.setattr(files.resolve, "__defaults__", (tmp_path,))
    assert files.main(["digest", "snapshot-abc.db"]) == 0
    assert capsysbinary.readouterr().out == b"missing\n"
    (tmp_path / "snapshot-abc.db").write_bytes(b"every secret")
    assert files.main(["digest", "snapshot-abc.db"]) == 0
    answer = capsysbinary.readouterr().out.decode()
    assert harness.parse_digest(answer.strip()) == harness.Digest(
        12, hashlib.sha256(b"every secret").hexdigest()
    )
    assert files.main(["send", "snapshot-abc.db"]) == 0
    assert base64.b64decode(capsysbinary.readouterr().out) == b"every secret"
    assert files.main(["send", "../orders.json"]) == 1
    assert b"not a plain file name" in capsysbinary.readouterr().err


def test_an_unexpected_digest_answer_is_an_error() -> None:
    assert harness.parse_digest("missing") is None
    with pytest.raises(harness.CopyFailed, match="unexpected digest answer"):
        harness.parse_digest("Traceback (most recent call last):")


class _LastFrameWithTheEnd:
    """An exec stream whose last stdout frame comes in with the end, during the stderr
    read (the Kubernetes client reads every frame that is there, of any channel)."""

    def __init__(self) -> None:
        self.open = True
        self.stdout = ["QUJD"]
        self.rounds = 0

    def is_open(self) -> bool:
        return self.open

    def update(self, timeout: float = 0) -> None:
        self.rounds += 1

    def read_stdout(self, timeout: float = 0) -> str:
        return self.stdout.pop(0) if self.stdout else ""

    def read_stderr(self, timeout: float = 0) -> str:
        if self.rounds == 2:
            self.stdout.append("REVG")
            self.open = False
        return ""


def test_the_stdout_that_came_in_with_the_end_is_read_too() -> None:
    text = "".join(out for out, _ in harness._frames(_LastFrameWithTheEnd(), "x", 1e12))
    assert base64.b64decode(text) == b"ABCDEF"
