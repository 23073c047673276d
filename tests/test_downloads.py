"""Downloads and files named by downloaded data (patchcam.download, datasets/_coco.py): only
https, complete and hash-checked files under their final name, and no path from a json or
zip that leaves its folder. No network: the one opener (`download._open`) is replaced."""

import hashlib
import io
import json
import urllib.request
import zipfile
from pathlib import Path

import pytest
from helpers import load_script

from patchcam import download as dl

BODY = b"\xff\xd8 not really a jpeg \xff\xd9"


class _Response(io.BytesIO):
    """What urlopen returns, as far as download() reads it; `fail_after` bytes then a drop."""

    def __init__(self, data: bytes, fail_after: int | None = None):
        super().__init__(data)
        self.status, self.headers, self.fail_after = 200, {"Content-Length": str(len(data))}, \
            fail_after

    def read(self, n: int = -1) -> bytes:
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection dropped")
        return super().read(min(n, self.fail_after - self.tell()) if self.fail_after else n)


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """The urls download() opened; each answers BODY."""
    urls: list[str] = []

    def fake_open(req: urllib.request.Request, timeout: float) -> _Response:
        urls.append(req.full_url)
        return _Response(BODY)

    monkeypatch.setattr(dl, "_open", fake_open)
    return urls


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert text.startswith("error: ") and "\n" not in text
    return text


@pytest.mark.parametrize("url", ["http://example.com/x.zip", "file:///etc/passwd",
                                 "ftp://example.com/x", "FILE:/etc/passwd", "/etc/passwd",
                                 "https:///no-host", "javascript:alert(1)", ""])
def test_only_https_is_fetched(tmp_path, opened, url):
    with pytest.raises(dl.DownloadError) as e:
        dl.download(url, tmp_path / "x")
    assert "only https://" in _one_line(e)
    assert opened == [] and list(tmp_path.iterdir()) == []


def test_redirects_stay_on_https_and_drop_credentials():
    h = dl._HttpsRedirects()
    req = urllib.request.Request("https://api.example.com/f",
                                 headers={"Authorization": "Basic c2VjcmV0"})
    with pytest.raises(dl.DownloadError, match="only https://"):
        h.redirect_request(req, None, 302, "Found", {}, "http://api.example.com/f")
    same = h.redirect_request(req, None, 302, "Found", {}, "https://api.example.com/g")
    assert same.get_header("Authorization") == "Basic c2VjcmV0"
    other = h.redirect_request(req, None, 302, "Found", {}, "https://storage.example.net/f")
    assert other.full_url == "https://storage.example.net/f"
    assert other.get_header("Authorization") is None


def test_download_is_renamed_only_when_complete_and_hash_checked(tmp_path, opened, monkeypatch):
    good = hashlib.sha256(BODY).hexdigest()
    dest = dl.download("https://example.com/a.bin", tmp_path / "a.bin", sha256=good)
    assert dest.read_bytes() == BODY and not (tmp_path / "a.bin.part").exists()
    with pytest.raises(dl.DownloadError) as e:
        dl.download("https://example.com/b.bin", tmp_path / "b.bin", sha256="0" * 64)
    assert "SHA-256" in _one_line(e)
    assert not (tmp_path / "b.bin").exists() and not (tmp_path / "b.bin.part").exists()
    # a connection dropped half-way leaves only the .part (resumed next time)
    monkeypatch.setattr(dl, "_open", lambda req, timeout: _Response(BODY, fail_after=5))
    with pytest.raises(ConnectionResetError):
        dl.download("https://example.com/c.bin", tmp_path / "c.bin")
    assert not (tmp_path / "c.bin").exists() and (tmp_path / "c.bin.part").stat().st_size == 5


@pytest.mark.parametrize("name", ["../../x.jpg", "a/../../x.jpg", "/etc/x.jpg", "C:\\x.jpg",
                                  "C:x.jpg", "\\\\server\\share\\x.jpg", "a\\..\\..\\x.jpg",
                                  "x\x00.jpg", "", ".", None, 7])
def test_inside_refuses_paths_that_leave_the_folder(tmp_path, name):
    with pytest.raises(dl.DownloadError) as e:
        dl.inside(tmp_path / "out", name, "file_name")
    assert "unsafe file_name" in _one_line(e)


def test_inside_follows_symlinks(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(dl.DownloadError):
        dl.inside(tmp_path / "out", "link/x.jpg")
    assert dl.inside(tmp_path / "out", "train/000001.jpg") == tmp_path / "out/train/000001.jpg"


def test_unzip_refuses_members_outside(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok/x.txt", "fine")
        z.writestr("../escaped.txt", "no")
    with pytest.raises(dl.DownloadError) as e:
        dl.unzip(archive, tmp_path / "out")
    assert "escaped.txt" in _one_line(e)
    assert not (tmp_path / "escaped.txt").exists()


# ---- the COCO prepare scripts with a hostile instances json -----------------------------------
def _instances(tmp_path: Path, **image) -> Path:
    doc = {"images": [{"id": 1, "width": 10, "height": 10, "file_name": "000001.jpg"} | image],
           "categories": [{"id": 1, "name": "person"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5],
                            "area": 25}]}
    p = tmp_path / "instances_val2017.json"
    p.write_text(json.dumps(doc))
    return p


def _written(tmp_path: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if p.name not in ("instances_val2017.json", "local", "x.jpg"))


@pytest.mark.parametrize("script", ["prepare_vww", "prepare_coco_person"])
@pytest.mark.parametrize("image,refused", [
    ({"file_name": "../../../x.jpg"}, "unsafe file_name '../../../x.jpg'"),
    ({"file_name": "/etc/x.jpg"}, "unsafe file_name '/etc/x.jpg'"),
    ({"coco_url": "file:///etc/passwd"}, "refusing coco_url 'file:///etc/passwd'"),
    ({"coco_url": "http://evil.example/000001.jpg"}, "refusing coco_url 'http://evil"),
    ({"coco_url": "https://evil.example/000001.jpg"}, "refusing coco_url 'https://evil"),
])
def test_hostile_instances_json_is_refused(tmp_path, opened, script, image, refused):
    ann = _instances(tmp_path, **image)
    out = tmp_path / "deep" / "er" / "out"
    with pytest.raises(SystemExit) as e:
        load_script(script).main(["--annotations", str(ann), "--download", "--out", str(out)])
    assert refused in _one_line(e)
    assert opened == [] and _written(tmp_path) == []
    # the same from a local image folder: no link or copy outside either
    (tmp_path / "local").mkdir(exist_ok=True)
    (tmp_path / "x.jpg").write_bytes(BODY)
    if "file_name" in image:
        with pytest.raises(SystemExit, match="unsafe file_name"):
            load_script(script).main(["--annotations", str(ann), "--images",
                                      str(tmp_path / "local"), "--out", str(out)])
        assert _written(tmp_path) == []


def test_coco_server_addresses_are_fetched_over_https(tmp_path, opened):
    ann = _instances(tmp_path, coco_url="http://images.cocodataset.org/val2017/000001.jpg")
    out = tmp_path / "vww"
    assert load_script("prepare_vww").main(["--annotations", str(ann), "--download",
                                            "--out", str(out)]) == 0
    assert opened == ["https://images.cocodataset.org/val2017/000001.jpg"]
    assert (out / "images" / "000001.jpg").read_bytes() == BODY
    assert "images/000001.jpg,person" in (out / "labels.csv").read_text()


# ---- pinned clones --------------------------------------------------------------------------
def _git(*args: str, cwd: Path | None = None) -> str:
    import subprocess
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    """A local repository with two commits standing in for github.com/x/y; git's clone of the
    https address is pointed at it."""
    import subprocess
    repo = tmp_path / "upstream"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    commits = []
    for i in range(2):
        (repo / "f.txt").write_text(str(i))
        _git("add", "f.txt", cwd=repo)
        _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", str(i), cwd=repo)
        commits.append(_git("rev-parse", "HEAD", cwd=repo))
    real = subprocess.run

    def run(cmd, *a, **kw):
        cmd = [str(repo) if c == "https://github.com/x/y" else c for c in cmd]
        return real(cmd, *a, **kw)

    monkeypatch.setattr(dl.subprocess, "run", run)
    return commits


def test_clone_pinned_checks_out_and_verifies_the_commit(tmp_path, upstream):
    dest = tmp_path / "cache" / "y"
    assert dl.clone_pinned("https://github.com/x/y", dest, upstream[0], "Y") == dest
    assert dl.git_head(dest) == upstream[0] and (dest / "f.txt").read_text() == "0"
    assert not dest.with_name("y.part").exists()
    # a second run accepts it as it is, without fetching
    assert dl.clone_pinned("https://github.com/x/y", dest, upstream[0], "Y") == dest


def test_a_failed_checkout_leaves_no_tree_behind(tmp_path, upstream):
    dest = tmp_path / "cache" / "y"
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(dl.CloneError, match="checkout --quiet --detach 0123456789ab.*failed"):
        dl.clone_pinned("https://github.com/x/y", dest, missing, "Y")
    assert not dest.exists() and not dest.with_name("y.part").exists()


def test_an_existing_tree_at_another_commit_is_refused(tmp_path, upstream):
    dest = tmp_path / "cache" / "y"
    dl.clone_pinned("https://github.com/x/y", dest, upstream[1], "Y")
    with pytest.raises(dl.CloneError) as e:
        dl.clone_pinned("https://github.com/x/y", dest, upstream[0], "Y")
    assert f"holds commit {upstream[1][:12]}, not Y at the pinned {upstream[0][:12]}" \
        in str(e.value)
    assert f"rm -rf {dest}" in str(e.value)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(dl.CloneError, match="holds no git checkout"):
        dl.verify_pinned(plain, upstream[0], "Y")


def test_a_pin_must_be_a_full_commit(tmp_path):
    with pytest.raises(dl.CloneError, match="full 40-digit commit"):
        dl.clone_pinned("https://github.com/x/y", tmp_path / "y", "main", "Y")


def test_an_md5_pin_is_checked_on_download_and_on_the_kept_file(tmp_path, opened):
    """COCO lists only an MD5 for its annotation zip: it is checked like a SHA-256 pin."""
    good = hashlib.md5(BODY).hexdigest()
    dest = dl.download("https://example.com/a.bin", tmp_path / "a.bin", md5=good)
    assert dest.read_bytes() == BODY
    with pytest.raises(dl.DownloadError) as e:
        dl.download("https://example.com/a.bin", tmp_path / "a.bin", md5="0" * 32)
    assert "MD5" in _one_line(e) and "delete it to download it again" in _one_line(e)
    with pytest.raises(dl.DownloadError) as e:
        dl.download("https://example.com/b.bin", tmp_path / "b.bin", md5="0" * 32)
    assert "MD5" in _one_line(e)
    assert not (tmp_path / "b.bin").exists() and not (tmp_path / "b.bin.part").exists()


def test_the_coco_annotation_zip_is_fetched_with_its_published_md5(tmp_path, monkeypatch):
    coco = load_script("_coco")
    asked = []
    monkeypatch.setattr(coco, "download", lambda url, dest, **kw: asked.append((url, kw)) or dest)
    monkeypatch.setattr(coco, "unzip", lambda archive, dest, members: dest)
    coco.fetch_annotations(tmp_path, "val2017")
    assert asked == [("https://images.cocodataset.org/annotations/annotations_trainval2017.zip",
                      {"md5": "f4bbac642086de4f52a3fdda2de5fa2c"})]
