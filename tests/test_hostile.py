"""Hostile input, table-driven: every refusal is a clear one-line error and leaves nothing behind.

Each case runs one hostile call (core API or `python -m app`) against a data dir holding a
project "P" (class "car") with one ready video "crossing.mp4", then checks the refusal (the
exception's message, or the CLI's exit status and its single stderr line) and that the row
counts and the files under videos/, uploads/ and versions/ are exactly what they were.
Names that are odd but valid are stored and read back byte for byte.
"""
from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import auth, datasets, ingest, labels, projects, registry, transfer
from app.errors import TpodError
from app.store import db
from tests._tiny_model import make_video
from tests.conftest import ROOT, SHARED

CROSSING = SHARED / "otb_crossing" / "crossing_h264.mp4"
JPG = SHARED / "otb_crossing" / "img" / "0001.jpg"
TABLES = ("projects", "label_classes", "videos", "frames", "tracks", "boxes", "dataset_versions",
          "training_runs", "models")
WATCHED = ("videos", "uploads", "versions")


# ---------------------------------------------------------------------------- hostile files


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _lying_zip(path: Path) -> Path:
    """A member that inflates to far more than its header declares (a zip bomb that lies)."""
    real = b"\0" * 300_000
    _zip(path, [("bomb/0001.jpg", real)])
    raw = bytearray(path.read_bytes())
    declared = (1000).to_bytes(4, "little")
    lh = raw.find(b"PK\x03\x04")
    raw[lh + 22:lh + 26] = declared  # local header: uncompressed size
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = declared  # central directory: uncompressed size
    path.write_bytes(bytes(raw))
    return path


def _zero_frame_avi(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()  # header with a video stream, then no packets at all
    return path


def _coco(images: list[dict], anns: list[dict], cats: list[dict] | None = None) -> bytes:
    cats = cats if cats is not None else [{"id": 1, "name": "car"}]
    return json.dumps({"images": images, "annotations": anns, "categories": cats}).encode()


def _img(i: int = 1, name: str = "frame_000000.jpg") -> dict:
    return {"id": i, "file_name": name, "width": 360, "height": 240}


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hostile")
    jpg = JPG.read_bytes()
    video = CROSSING.read_bytes()
    rnd = random.Random(7)
    a: dict[str, Path] = {}

    def put(name: str, data: bytes) -> Path:
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    a["text_mp4"] = put("notes.mp4", b"this is a shopping list, not a video\n" * 50)
    a["truncated"] = put("truncated.mp4", video[: len(video) // 3])
    a["corrupt"] = put("corrupt.mp4", video[:4096] + bytes(rnd.randrange(256) for _ in range(len(video) - 4096)))
    a["zero_frames"] = _zero_frame_avi(d / "zero.avi")
    a["empty_mp4"] = put("empty.mp4", b"")
    a["exe"] = put("setup.exe", b"MZ" + b"\0" * 100)
    a["big"] = put("big.mp4", b"\0" * (int(1.5 * 1024 * 1024)))
    a["video"] = put("crossing.mp4", video)
    a["video2"] = put("other/crossing.mp4", video)
    a["zipslip"] = _zip(d / "slip.zip", [("ok/0001.jpg", jpg), ("../../evil.jpg", jpg)])
    a["abs_zip"] = _zip(d / "abs.zip", [("/etc/cron.d/evil.jpg", jpg)])
    a["bomb"] = _zip(d / "bomb.zip", [("zeros.jpg", b"\0" * (3 * 1024 * 1024))])
    a["lying"] = _lying_zip(d / "lying.zip")
    a["many"] = _zip(d / "many.zip", [(f"f{i}.jpg", jpg) for i in range(5)])
    link = zipfile.ZipInfo("link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    a["symlink"] = _zip(d / "symlink.zip", [("a.jpg", jpg), (link, b"/etc/passwd")])
    a["dupes_zip"] = _zip(d / "dupes.zip", [("a.jpg", jpg), ("A.JPG", jpg)])
    a["empty_zip"] = _zip(d / "empty.zip", [])
    a["no_images_zip"] = _zip(d / "docs.zip", [("readme.txt", b"hello")])
    a["not_zip"] = put("labels.zip", b"plain text pretending to be a zip")
    a["bad_jpg"] = put("broken.jpg", b"\xff\xd8\xff not really")
    a["coco_malformed"] = put("coco_bad.json", b'{"images": [{"id": 1, "file_name": ')
    a["coco_dup_image"] = put("coco_dup.json", _coco([_img(1), _img(1, "frame_000001.jpg")], []))
    a["coco_dup_cat"] = put("coco_dupcat.json", _coco([_img()], [], [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]))
    a["coco_outside"] = put("coco_out.json", _coco(
        [_img()], [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5000, 5000, 40, 40]}]))
    a["coco_list"] = put("coco_list.json", b'{"images": {}, "annotations": [], "categories": []}')
    a["cvat_malformed"] = put("cvat.xml", b"<annotations><track id='0' label='car'><box frame='0'")
    a["cvat_entity"] = put("xxe.xml", b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                      b"<annotations>&x;</annotations>")
    a["cvat_dup_track"] = put("cvat_dup.xml", (
        b"<annotations><meta><task><original_size><width>360</width><height>240</height></original_size>"
        b"</task></meta>"
        b"<track id='0' label='car'><box frame='0' xtl='1' ytl='1' xbr='9' ybr='9' outside='0' occluded='0' "
        b"keyframe='1'/></track><track id='0' label='car'><box frame='1' xtl='1' ytl='1' xbr='9' ybr='9' "
        b"outside='0' occluded='0' keyframe='1'/></track></annotations>"))
    a["yolo_bad_yaml"] = _zip(d / "yolo_bad.zip", [("data.yaml", b"names: [car\ntrain: : :\n"),
                                                   ("images/train/a.jpg", jpg)])
    a["yolo_gap_names"] = _zip(d / "yolo_gap.zip", [("data.yaml", b"names:\n  0: car\n  5: bus\ntrain: images/train\n"),
                                                    ("images/train/a.jpg", jpg)])
    a["coco_zipslip"] = _zip(d / "coco_slip.zip", [("annotations/instances.json", _coco([_img()], [])),
                                                   ("../images/frame_000000.jpg", jpg)])
    return a


# ---------------------------------------------------------------------------- the world and its snapshot


@dataclass
class World:
    data_dir: Path
    project_id: int
    video_id: int
    a: dict[str, Path]

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        db.release()  # the CLI is another process: let it take the DuckDB file
        return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=dict(os.environ),
                              capture_output=True, text=True, timeout=120, input=stdin)


@pytest.fixture
def world(data_dir: Path, assets: dict[str, Path]) -> World:
    p = projects.create_project("P", ["car"])
    vid = make_video(p.id, name="crossing.mp4", frames=list(range(6)))
    return World(data_dir, p.id, vid, assets)


def snapshot(data_dir: Path) -> tuple[dict[str, int], list[str], bool]:
    with db.connect() as cur:
        counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
    files = sorted(p.relative_to(data_dir).as_posix() for sub in WATCHED if (data_dir / sub).exists()
                   for p in (data_dir / sub).rglob("*") if p.name != ".staging")
    return counts, files, (data_dir / "users.json").exists()


def _version(w: World) -> None:
    from tests.test_registry import add_version

    add_version(w.data_dir, w.project_id, "v1", train=4, val=2)


# ---------------------------------------------------------------------------- the table

Api = Callable[[World], object]
C = pytest.param


def api(fn: Api, setup: Callable[[World], None] | None = None) -> tuple:
    return ("api", fn, setup)


def cli(fn: Callable[[World], list[str]], setup: Callable[[World], None] | None = None) -> tuple:
    return ("cli", fn, setup)


def _ingest(w: World, *names_keys: tuple[str, str], **opts) -> object:
    return ingest.ingest_now(w.project_id, [(n, w.a[k]) for n, k in names_keys], **opts)


def _import(w: World, key: str, fmt: str, onto: bool = True, **kw) -> object:
    return transfer.import_annotations(w.a[key], w.project_id, fmt, video_id=w.video_id if onto else None, **kw)


CASES = [
    # ---- upload / ingest through the core
    C(api(lambda w: _ingest(w, ("notes.mp4", "text_mp4"))), "not a readable video", {}, id="text-renamed-mp4"),
    C(api(lambda w: _ingest(w, ("truncated.mp4", "truncated"))), "truncated|corrupt|not a readable", {},
      id="truncated-video"),
    C(api(lambda w: _ingest(w, ("corrupt.mp4", "corrupt"))), "corrupt|not a readable|could not decode", {},
      id="corrupt-video"),
    C(api(lambda w: _ingest(w, ("zero.avi", "zero_frames"))), "zero decodable frames", {}, id="zero-frame-video"),
    C(api(lambda w: _ingest(w, ("empty.mp4", "empty_mp4"))), "the file is empty", {}, id="empty-file"),
    C(api(lambda w: _ingest(w, ("setup.exe", "exe"))), "unsupported file type .exe", {}, id="unsupported-type"),
    C(api(lambda w: _ingest(w, ("big.mp4", "big"))), "TPOD_MAX_UPLOAD_MB", {"TPOD_MAX_UPLOAD_MB": "1"},
      id="over-upload-limit"),
    C(api(lambda w: ingest.start_ingest_uploads(None, w.project_id, [("big.mp4", w.a["big"].read_bytes())])),
      "TPOD_MAX_UPLOAD_MB", {"TPOD_MAX_UPLOAD_MB": "1"}, id="over-upload-limit-staged"),
    C(api(lambda w: _ingest(w, ("slip.zip", "zipslip"))), r"outside the archive folder \('\.\.'\)", {},
      id="zip-slip"),
    C(api(lambda w: _ingest(w, ("abs.zip", "abs_zip"))), "absolute path", {}, id="zip-absolute-path"),
    C(api(lambda w: _ingest(w, ("bomb.zip", "bomb"))), "TPOD_MAX_ARCHIVE_MB", {"TPOD_MAX_ARCHIVE_MB": "1"},
      id="zip-bomb-bytes"),
    C(api(lambda w: _ingest(w, ("lying.zip", "lying"))), "damaged archive|inflates to more", {},
      id="zip-bomb-lying-header"),
    C(api(lambda w: _ingest(w, ("many.zip", "many"))), "TPOD_MAX_ARCHIVE_FILES", {"TPOD_MAX_ARCHIVE_FILES": "3"},
      id="zip-bomb-file-count"),
    C(api(lambda w: _ingest(w, ("symlink.zip", "symlink"))), "symbolic link", {}, id="zip-symlink"),
    C(api(lambda w: _ingest(w, ("dupes.zip", "dupes_zip"))), "appears twice in the archive", {},
      id="zip-duplicate-members"),
    C(api(lambda w: _ingest(w, ("empty.zip", "empty_zip"))), "has no images", {}, id="empty-archive"),
    C(api(lambda w: _ingest(w, ("docs.zip", "no_images_zip"))), "has no images", {}, id="archive-without-images"),
    C(api(lambda w: _ingest(w, ("a.jpg", "bad_jpg"), ("b.jpg", "bad_jpg"))), "not a readable image", {},
      id="broken-image"),
    C(api(lambda w: _ingest(w, ("new.mp4", "video"), ("new.mp4", "video2")))," appears twice in this upload", {},
      id="duplicate-in-batch"),
    C(api(lambda w: _ingest(w, ("crossing.mp4", "video"))), "already has a video named 'crossing.mp4'", {},
      id="duplicate-against-project"),
    C(api(lambda w: _ingest(w, ("\udcff\udcfe.mp4", "video"))), "control characters", {},
      id="non-utf8-file-name"),
    C(api(lambda w: _ingest(w, ("ok.mp4", "video"), ("notes.mp4", "text_mp4"))), "not a readable video", {},
      id="one-bad-file-spoils-the-batch"),
    C(api(lambda w: _ingest(w, ("v.mp4", "video"), stride=-1)), "stride must be a whole number >= 1", {},
      id="negative-stride"),
    C(api(lambda w: _ingest(w, ("v.mp4", "video"), start_s=5.0, end_s=2.0)), "is empty", {},
      id="backwards-time-range"),
    C(api(lambda w: _ingest(w, ("v.mp4", "video"), start_s=500.0)), "no frames in the time range", {},
      id="time-range-past-the-end"),
    C(api(lambda w: _ingest(w, ("v.mp4", "video"))), "TPOD_MAX_VIDEO_FRAMES", {"TPOD_MAX_VIDEO_FRAMES": "10"},
      id="too-many-frames"),
    C(api(lambda w: ingest.ingest_now(999, [("v.mp4", w.a["video"])])), "no project 999", {},
      id="ingest-unknown-project"),
    # ---- import
    C(api(lambda w: _import(w, "coco_malformed", "coco")), "malformed JSON", {}, id="coco-malformed-json"),
    C(api(lambda w: _import(w, "coco_dup_image", "coco")), "duplicate image id 1", {}, id="coco-duplicate-image-ids"),
    C(api(lambda w: _import(w, "coco_dup_cat", "coco")), "duplicate category id 1", {},
      id="coco-duplicate-category-ids"),
    C(api(lambda w: _import(w, "coco_list", "coco")), "'images' must be a list", {}, id="coco-wrong-shape"),
    C(api(lambda w: _import(w, "coco_outside", "coco")), "skipped:box lies outside the 360x240 image", {},
      id="coco-box-outside-image"),
    C(api(lambda w: _import(w, "cvat_malformed", "cvat")), "malformed XML", {}, id="cvat-malformed-xml"),
    C(api(lambda w: _import(w, "cvat_entity", "cvat")), "entity declarations are not accepted", {},
      id="cvat-xml-entities"),
    C(api(lambda w: _import(w, "cvat_dup_track", "cvat")), "duplicate track id 0", {}, id="cvat-duplicate-track-ids"),
    C(api(lambda w: _import(w, "yolo_bad_yaml", "yolo", onto=False)), "malformed YAML", {}, id="yolo-malformed-yaml"),
    C(api(lambda w: _import(w, "yolo_gap_names", "yolo", onto=False)), "without gaps", {}, id="yolo-names-with-gaps"),
    C(api(lambda w: _import(w, "coco_zipslip", "coco", onto=False)), r"outside the archive folder", {},
      id="import-zip-slip"),
    C(api(lambda w: _import(w, "bomb", "coco", onto=False)), "TPOD_MAX_ARCHIVE_MB", {"TPOD_MAX_ARCHIVE_MB": "1"},
      id="import-zip-bomb"),
    C(api(lambda w: _import(w, "lying", "coco", onto=False)), "damaged archive|inflates to more", {},
      id="import-lying-zip"),
    C(api(lambda w: _import(w, "symlink", "coco", onto=False)), "symbolic link", {}, id="import-zip-symlink"),
    C(api(lambda w: _import(w, "empty_zip", "coco", onto=False)), "empty archive", {}, id="import-empty-archive"),
    C(api(lambda w: _import(w, "not_zip", "coco", onto=False)), "is not a zip archive", {}, id="import-not-a-zip"),
    C(api(lambda w: _import(w, "coco_malformed", "darknet")), "unknown import format 'darknet'", {},
      id="import-unknown-format"),
    C(api(lambda w: transfer.import_annotations(w.data_dir / ".." / ".." / "nope.zip", w.project_id, "coco")),
      "no such file", {}, id="import-missing-path-with-dotdot"),
    # ---- names
    C(api(lambda w: projects.create_project("   ")), "project name is empty", {}, id="project-name-blank"),
    C(api(lambda w: projects.create_project("x" * 121)), "longer than 120", {}, id="project-name-too-long"),
    C(api(lambda w: projects.create_project("bell\x07")), "control characters", {}, id="project-name-control-char"),
    C(api(lambda w: projects.create_project("pay\u200bpal")), "control characters", {}, id="project-name-zero-width"),
    C(api(lambda w: projects.create_project("evil\u202egnp.exe")), "control characters", {},
      id="project-name-rtl-override"),
    C(api(lambda w: projects.create_project("two\nlines")), "control characters", {}, id="project-name-newline"),
    C(api(lambda w: projects.create_project(" P ")), "already exists", {}, id="project-name-taken-after-strip"),
    C(api(lambda w: projects.create_project("Q", ["ok", "nul\x00"])), "class name .* control characters", {},
      id="class-name-nul"),
    C(api(lambda w: projects.create_project("Q", ["car", "car"])), "unique", {}, id="class-names-duplicate"),
    C(api(lambda w: projects.add_class(w.project_id, "\u2066isolate")), "control characters", {},
      id="class-name-bidi-isolate"),
    C(api(lambda w: projects.add_class(w.project_id, "car")), "already exists", {}, id="class-name-taken"),
    C(api(lambda w: datasets.create_version(w.project_id, "v\t1")), "version name .* control characters", {},
      id="version-name-tab"),
    C(api(lambda w: datasets.create_version(w.project_id, "v" * 500)), "longer than 120", {},
      id="version-name-too-long"),
    C(api(lambda w: auth.add_user("ann\r\nadmin", "long enough pw")), "user name .* control characters", {},
      id="user-name-crlf"),
    C(api(lambda w: auth.add_user("", "long enough pw")), "user name is empty", {}, id="user-name-empty"),
    C(api(lambda w: ingest.ingest_now(w.project_id, [("a.jpg", JPG), ("b.jpg", JPG)],
                                      image_set_name="\u200f")), "image set name", {}, id="image-set-name-rlm"),
    # ---- training parameters through the core
    C(api(lambda w: registry.create_run(w.project_id, 1, "yolo26n", {"epochs": 1}), _version),
      "cannot reach", {}, id="pretrained-weights-offline"),
    C(api(lambda w: registry.create_run(w.project_id, 1, "yolo26n.yaml", {"hyp": {"lr0": "x"}}), _version),
      "lr0='x' is not a number", {}, id="training-hyperparameter-not-a-number"),
    # ---- the command line
    C(cli(lambda w: ["ingest", str(w.a["text_mp4"]), "--project", "P"]), "not a readable video", {},
      id="cli-ingest-text-mp4"),
    C(cli(lambda w: ["ingest", str(w.a["truncated"]), "--project", "Brand new"]), "truncated|corrupt|not a readable",
      {}, id="cli-ingest-truncated-into-new-project"),
    C(cli(lambda w: ["ingest", str(w.a["video"]), "--project", "P", "--stride", "-2"]), "stride", {},
      id="cli-negative-stride"),
    C(cli(lambda w: ["ingest", str(w.a["video"]), "--project", "P", "--stride", "two"]), "invalid int value", {},
      id="cli-stride-not-a-number"),
    C(cli(lambda w: ["ingest", str(w.a["video"]), "--project", "P", "--max-side", "4"]), "at least 16", {},
      id="cli-max-side-too-small"),
    C(cli(lambda w: ["ingest", str(w.a["video"].parent / ".." / "missing.mp4"), "--project", "P"]), "no such file",
      {}, id="cli-missing-file-with-dotdot"),
    C(cli(lambda w: ["ingest", "../../../../etc/passwd", "--project", "P"]), "unsupported file type", {},
      id="cli-ingest-etc-passwd"),
    C(cli(lambda w: ["ingest", str(w.a["big"]), "--project", "P"]), "TPOD_MAX_UPLOAD_MB", {"TPOD_MAX_UPLOAD_MB": "1"},
      id="cli-over-upload-limit"),
    C(cli(lambda w: ["ingest", str(w.a["zipslip"]), "--project", "Fresh"]), "outside the archive folder", {},
      id="cli-zip-slip-into-new-project"),
    C(cli(lambda w: ["import", str(w.a["coco_malformed"]), "--project", "P", "--format", "coco", "--video",
                     str(w.video_id)]), "malformed JSON", {}, id="cli-import-malformed-coco"),
    C(cli(lambda w: ["import", str(w.a["empty_zip"]), "--project", "Another", "--format", "yolo"]),
      "empty archive", {}, id="cli-import-empty-archive-into-new-project"),
    C(cli(lambda w: ["import", str(w.a["coco_malformed"]), "--project", "P", "--format", "labelme"]),
      "invalid choice", {}, id="cli-import-unknown-format"),
    C(cli(lambda w: ["import", str(w.a["coco_malformed"]), "--project", "P", "--format", "coco", "--video", "999"]),
      "video 999 is not in project", {}, id="cli-import-unknown-video"),
    C(cli(lambda w: ["version", "create", "--project", "P", "--name", "v", "--val", "1.5"]), "val=1.5", {},
      id="cli-val-above-one"),
    C(cli(lambda w: ["version", "create", "--project", "P", "--name", "v", "--val", "0.2", "--test", "-0.1"]),
      "test=-0.1", {}, id="cli-negative-test-share"),
    C(cli(lambda w: ["version", "create", "--project", "P", "--name", "v", "--every", "0"]), "every_nth=0", {},
      id="cli-every-zero"),
    C(cli(lambda w: ["train", "--project", "P", "--version", "v1", "--model", "yolo99z"], _version),
      "unknown model 'yolo99z'", {}, id="cli-unknown-model"),
    C(cli(lambda w: ["train", "--project", "P", "--version", "v1", "--model", "yolo26n.yaml",
                     "--epochs", "-3"], _version), "epochs=-3", {}, id="cli-negative-epochs"),
    C(cli(lambda w: ["train", "--project", "P", "--version", "v1", "--model", "../../x.pt"], _version),
      "does not exist", {}, id="cli-weights-path-escape"),
    C(cli(lambda w: ["train", "--project", "P", "--version", "nope"]), "no dataset version 'nope'", {},
      id="cli-unknown-version"),
    C(cli(lambda w: ["stats", "--project", "'; DROP TABLE projects;--"]), "no project", {},
      id="cli-sql-in-project-ref"),
    C(cli(lambda w: ["project", "create", "a\x1bb"]), "control characters", {}, id="cli-project-name-escape-char"),
    C(cli(lambda w: ["user", "add", "x\u200by", "--password", "long enough pw"]), "control characters", {},
      id="cli-user-name-zero-width"),
    C(cli(lambda w: ["cancel", "nosuchjob"]), "no job nosuchjob", {}, id="cli-cancel-unknown-job"),
    C(cli(lambda w: ["prelabel", "best.pt", "--video", str(w.video_id)]), "registered model id", {},
      id="cli-prelabel-path-not-id"),
    C(cli(lambda w: ["predict", "../../etc/shadow", str(JPG)]), "no such model|must be an Ultralytics .pt", {}, id="cli-predict-missing-weights"),
]


@pytest.mark.parametrize("action, expect, env", CASES)
def test_hostile_input_is_refused_and_leaves_nothing(world: World, monkeypatch: pytest.MonkeyPatch,
                                                      action: tuple[str, Callable], expect: str, env: dict) -> None:
    import re

    kind, fn, setup = action
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if setup is not None:
        setup(world)
    if kind == "cli":
        args = fn(world)
        before = snapshot(world.data_dir)
        r = world.cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0, f"exit 0 for {args}: {r.stdout[-500:]}"
        assert len(lines) == 1, f"stderr of {args} is not one line:\n{r.stderr}"
        assert re.search(expect, lines[0]), lines[0]
    else:
        before = snapshot(world.data_dir)
        if expect.startswith("skipped:"):
            report = fn(world)
            reasons = [s["reason"] for s in report["skipped"]]
            assert report["boxes"] == 0 and any(expect.removeprefix("skipped:") in r for r in reasons), report
        else:
            with pytest.raises(TpodError) as err:
                fn(world)
            message = str(err.value)
            assert "\n" not in message, message
            assert re.search(expect, message), message
    assert snapshot(world.data_dir) == before


# ---------------------------------------------------------------------------- valid but hostile names

HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    "'; DROP TABLE projects;--",
    "**bold** [x](javascript:1)",
    'Robert"); DELETE FROM boxes; --',
    "%s %d {0} ${HOME} $(rm -rf /)",
    "..",
    "a/b\\c ../../etc",
    "شارع مزدحم",
    "名前 ✓ 🚗",
    "x" * 120,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_but_valid_names_round_trip_exactly(data_dir: Path, name: str) -> None:
    p = projects.create_project(name, [name, "plain"])
    assert projects.get_project(p.id).name == name
    assert projects.get_project(name).id == p.id  # looked up through a parameter, not spliced SQL
    assert [c.name for c in projects.get_project(p.id).classes] == [name, "plain"]
    assert [x.name for x in projects.list_projects()] == [name]
    [video] = ingest.ingest_now(p.id, [("a.jpg", JPG), ("b.jpg", JPG)], image_set_name=name)
    assert ingest.get_video(video["id"])["name"] == name
    auth.add_user(name, "long enough pw")
    assert name in [u["name"] for u in auth.list_users()]
    assert auth.verify(name, "long enough pw") is not None
    # every table is still there and holds what it should
    with db.connect() as cur:
        assert cur.execute("SELECT count(*) FROM projects").fetchone()[0] == 1
        assert cur.execute("SELECT count(*) FROM videos").fetchone()[0] == 1
    assert not (data_dir.parent / "etc").exists()


def test_hostile_version_name_round_trips(data_dir: Path) -> None:
    p = projects.create_project("versions", ["car"])
    vid = make_video(p.id, name="v", frames=list(range(12)))
    for i in range(12):
        labels.create_box(vid, i, p.classes[0].id, (10, 10, 60, 80), author="t")
    for name in ("<img src=x onerror=alert(1)>", "'); DROP TABLE dataset_versions;--", "**v1** [x](javascript:1)"):
        v = datasets.create_version(p.id, name, split="blocks", val=0.25)
        assert datasets.get_version(v["id"])["name"] == name
        assert datasets.get_version(name, p.id)["id"] == v["id"]
    assert [v["name"] for v in datasets.list_versions(p.id)].count("**v1** [x](javascript:1)") == 1


def test_cli_hostile_project_name_round_trips(data_dir: Path) -> None:
    name = "<b>x</b> '; DROP TABLE projects;-- **y**"
    db.release()
    r = subprocess.run([sys.executable, "-m", "app", "project", "create", name, "--classes", "<i>c</i>", "--json"],
                       cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"project": 1, "name": name, "classes": ["<i>c</i>"]}
    assert projects.get_project(name).classes[0].name == "<i>c</i>"


def test_path_like_upload_names_stay_inside_the_data_dir(data_dir: Path) -> None:
    p = projects.create_project("paths")
    staged = ingest.stage_upload("../../etc/passwd.mp4", CROSSING.read_bytes())
    assert staged.resolve().is_relative_to((data_dir / "uploads").resolve())
    [video] = ingest.ingest_now(p.id, [("../../etc/passwd.mp4", staged)], max_side=64)
    assert video["name"] == "passwd.mp4" and video["status"] == "ready"
    [images] = ingest.ingest_now(p.id, [("..\\..\\boot.ini.jpg", JPG), ("/etc/shadow.jpg", JPG)])
    assert images["frame_count"] == 2
    outside = [q for q in data_dir.parent.rglob("*") if not q.resolve().is_relative_to(data_dir.resolve())]
    assert outside == []
    stored = [q.relative_to(data_dir).as_posix() for q in (data_dir / "uploads").rglob("*") if q.is_file()]
    assert f"uploads/{video['id']}/passwd.mp4" in stored
    assert all(".." not in s.split("/") for s in stored)
