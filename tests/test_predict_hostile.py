"""``python -m vizecg.predict`` over hostile files: every path gets one entry, never a traceback.

The corpus is generated here (no fixture files): zero bytes, text under image names,
truncated files of every accepted format, decompression bombs, extreme sizes and aspect
ratios, blank pages, other colour models and bit depths, multi-frame files, rotated pages,
odd kinds of directory entry, unsupported formats and oversized PDF pages, next to good prints.
The command runs as a subprocess, as a user runs it, with its memory sampled while it runs.
"""
from __future__ import annotations

import io
import json
import os
import resource
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from vizecg import predict
from vizecg.contract import LABELS
from vizecg.models import create_model, model_entry
from vizecg.page_reader import MAX_IMAGE_PIXELS, PDF_MAX_PIXELS, load_image
from vizecg.predict import load_classifier, main, predict_files
from vizecg.training.checkpoint import save_checkpoint

from test_page_reader import draw_ecg_page, rotate

REPO = Path(__file__).resolve().parents[1]
MEMORY_BUDGET = 2 << 30
TRACEBACK = "Traceback (most recent call last)"


# --- a tiny checkpoint -----------------------------------------------------------------------

def write_checkpoint(path: Path, name: str = "mobilenetv3", **changes) -> Path:
    """A checkpoint of the registered model ``name`` at its tiny options; ``changes`` override payload keys."""
    torch.manual_seed(0)
    options = dict(model_entry(name).tiny_options)
    payload = {"model_name": name, "model_options": options, "state_dict": create_model(name, **options).state_dict(),
               "labels": tuple(LABELS), "input": {"decimate": 4, "image_height": 64, "image_width": 128,
                                                  "render_style": {}},
               "epoch": 1, "metrics": {}, "params": {}}
    payload.update(changes)
    return save_checkpoint(payload, path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "best.pt")


# --- the corpus --------------------------------------------------------------------------------

def png_bytes(width: int, height: int, rows: bytes | None = None, *, bit_depth: int = 1, colour_type: int = 0) -> bytes:
    """A PNG written by hand, so its header can claim any size: ``rows`` is the whole filtered
    scanline data (default: all zero rows of a ``bit_depth``-bit grey image), compressed here."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    if rows is None:
        compressor = zlib.compressobj(9)
        row = b"\x00" * (1 + (width * bit_depth + 7) // 8)
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    else:
        data = zlib.compress(rows, 9)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def pdf_with_media_box(width_pt: float, height_pt: float) -> bytes:
    """A one-page PDF with an empty page of the given size (offsets in the xref are exact)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt:g} {height_pt:g}] >>".encode()]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def build_corpus(root: Path) -> dict[str, str | None]:
    """Write the hostile corpus and the good prints into ``root``; return the expectation per entry:
    ``None`` classified, a string a fragment of its error (which always names the file too), ``"any"``
    classified or refused, as long as it has an entry."""
    page = draw_ecg_page(seed=1)
    page_image = Image.fromarray(page)
    expected: dict[str, str | None] = {}

    def write(name: str, data: bytes, outcome: str | None) -> None:
        (root / name).write_bytes(data)
        expected[name] = outcome

    # good prints, and good pages in every other colour model, bit depth, container and orientation
    write("good_print_a.png", encoded(page_image, "PNG"), None)
    write("good_print_b.jpg", encoded(Image.fromarray(draw_ecg_page(seed=2)), "JPEG", quality=90), None)
    grey = np.asarray(page_image.convert("L"))
    write("grey16.png", encoded(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"), None)
    write("grey8.png", encoded(page_image.convert("L"), "PNG"), None)
    write("palette.png", encoded(page_image.convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), None)
    rgba = np.dstack([page, np.full(page.shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0  # a transparent margin: flattened to white paper
    write("rgba.png", encoded(Image.fromarray(rgba, "RGBA"), "PNG"), None)
    write("cmyk.jpg", encoded(page_image.convert("CMYK"), "JPEG", quality=90), None)
    write("cmyk.tif", encoded(page_image.convert("CMYK"), "TIFF"), None)
    ok, rgb16 = cv2.imencode(".tif", (page[:, :, ::-1].astype(np.uint16) * 257))
    write("rgb16.tif", rgb16.tobytes(), None)
    write("bilevel.png", encoded(page_image.convert("1"), "PNG"), "any")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, page.shape, dtype=np.uint8))
    write("multipage.tif", encoded(page_image, "TIFF", save_all=True, append_images=[noise]), None)
    write("animated.gif", encoded(page_image.convert("P"), "GIF", save_all=True,
                                  append_images=[noise.convert("P")], duration=100, loop=0), None)
    write("page.webp", encoded(page_image, "WEBP", quality=90), None)
    write("rotated_7deg.png", encoded(Image.fromarray(rotate(page, 7.0)), "PNG"), None)
    write("rotated_90deg.png", encoded(Image.fromarray(np.ascontiguousarray(np.rot90(page))), "PNG"), "any")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways, displayed upright after a quarter turn clockwise
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(page)))
    write("exif_rotated.jpg", encoded(sideways, "JPEG", quality=90, exif=exif), None)
    write("png_named.jpg", encoded(page_image, "PNG"), None)  # the content decides the format
    write("page.pdf", encoded(page_image, "PDF", resolution=150), None)
    # a PDF page 200 x 76 inches: at a fixed 200 dpi a 608 MP raster, rasterised under the cap instead
    write("large_page.pdf", encoded(page_image, "PDF", resolution=10), None)
    write("huge_media_box.pdf", pdf_with_media_box(1e6, 1e6), "does not look like an ECG")
    # a 45 MP phone photo: over the raster cap, decoded at half size by libjpeg
    big = page_image.resize((10000, 4500), Image.Resampling.NEAREST)
    write("phone_45mp.jpg", encoded(big, "JPEG", quality=60), None)
    del big

    # broken content under image names
    write("empty.png", b"", "file is empty")
    write("text.png", b"Dear doctor, the ECG is attached.\n" * 40, "not a readable image")
    write("eps_as.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n", "not a readable image")
    write("photo.heic", b"\x00\x00\x00\x18ftypheic" + bytes(200), "HEIC images are not supported")
    for suffix, format in ((".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP"), (".tif", "TIFF"), (".gif", "GIF"),
                           (".webp", "WEBP")):
        data = encoded(page_image if format != "GIF" else page_image.convert("P"), format)
        write(f"truncated{suffix}", data[: len(data) // 2], "corrupt")
    pdf = encoded(page_image, "PDF", resolution=150)
    write("truncated.pdf", pdf[: len(pdf) // 3], "any")  # pdfium may recover part of a cut PDF

    # decompression bombs: a header claiming 100000 x 100000, and a 3 KB PNG that inflates to 144 MP
    write("bomb_header.png", png_bytes(100_000, 100_000, rows=b"\x00" * 1000), "implausibly large")
    write("bomb_inflating.png", png_bytes(12_000, 12_000), "more than the 40 MP")

    # extreme sizes and aspect ratios, a blank page
    for name, (height, width) in {"size_5000x1.png": (1, 5000), "size_1x5000.png": (5000, 1),
                                  "size_3x3.png": (3, 3)}.items():  # named width x height
        write(name, encoded(Image.fromarray(np.full((height, width, 3), 128, np.uint8)), "PNG"), "px per side")
    write("strip_70x5000.png", encoded(Image.fromarray(np.full((70, 5000, 3), 128, np.uint8)), "PNG"),
          "times longer than wide")
    write("blank.png", encoded(Image.fromarray(np.full((760, 2000, 3), 255, np.uint8)), "PNG"), "almost no dark ink")

    # entries that are not regular files
    (root / "folder.png").mkdir()
    expected["folder.png"] = "is a directory"
    (root / "dangling.png").symlink_to(root / "nowhere.png")
    expected["dangling.png"] = "no such file"
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "pipe.png")  # opening it would block forever
        expected["pipe.png"] = "not a regular file"
    odd = os.fsdecode(b"odd \xff name.png")  # not valid UTF-8: a lone surrogate in Python
    write(odd, b"not an image", "not a readable image")

    (root / "notes.txt").write_text("not named like an image: not listed")
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    root = tmp_path_factory.mktemp("hostile")
    return root, build_corpus(root)


# --- running the command with its memory watched -------------------------------------------

def _tree_memory_bytes(pid: int) -> tuple[int, int]:
    """``(proportional set size of pid and all its descendants, largest peak resident set of one of them)``.

    The peak is each process's ``VmHWM``, which starts afresh at exec; ``ru_maxrss`` (``wait4``,
    ``RUSAGE_CHILDREN``) does not: Linux carries the parent's resident set over fork and exec into it,
    so a subprocess of a large test process would be charged with the test process's memory."""
    total, largest, stack = 0, 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    largest = max(largest, int(line.split()[1]) * 1024)
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue  # the process ended while being read
    return total, largest


def run_command(*args: str | Path, timeout: float = 120) -> tuple[subprocess.CompletedProcess, int, int]:
    """``python -m vizecg.predict ARGS`` in a subprocess; also the peak memory of its process tree (PSS,
    bytes) and the largest peak resident set of any one of its processes (bytes), sampled every 20 ms."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "vizecg.predict", *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
    peak, largest, done = 0, 0, threading.Event()

    def sample() -> None:
        nonlocal peak, largest
        while not done.is_set():
            tree, one = _tree_memory_bytes(process.pid)
            peak, largest = max(peak, tree), max(largest, one)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    if Path("/proc/self/smaps_rollup").exists():
        sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        done.set()
    return subprocess.CompletedProcess(command, process.returncode, stdout.decode(), stderr.decode(
        errors="backslashreplace")), peak, largest


# --- the corpus end to end -----------------------------------------------------------------

def test_every_hostile_file_gets_a_named_entry(corpus, checkpoint, tmp_path):
    root, expected = corpus
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.fromarray(draw_ecg_page(seed=3)).save(outside / "given_directly.png")
    started = time.monotonic()
    completed, peak_pss, children = run_command(root, outside / "given_directly.png", outside / "missing.png",
                                                "--checkpoint", checkpoint, "--json")
    elapsed = time.monotonic() - started
    print(f"\n{len(expected) + 2} paths in {elapsed:.1f} s; peak memory: {peak_pss / 2**20:.0f} MiB PSS of the "
          f"process tree, {children / 2**20:.0f} MiB max RSS of one process")

    assert TRACEBACK not in completed.stderr, completed.stderr
    assert completed.returncode == 1, completed.stderr
    document = json.loads(completed.stdout)
    assert document["checkpoint"] == str(checkpoint)
    files = [entry["file"] for entry in document["results"]]
    listed = [str(root / name) for name in sorted(expected)]
    assert files == listed + [str(outside / "given_directly.png"), str(outside / "missing.png")]

    results = {Path(entry["file"]).name: entry for entry in document["results"]}
    for name, outcome in expected.items():
        entry = results[name]
        if outcome is None:
            assert entry["error"] is None, entry["error"]
        if entry["error"] is None:
            assert outcome in (None, "any"), f"{name} was classified but should fail with {outcome!r}"
            assert list(entry["probabilities"]) == list(LABELS)
            assert all(0.0 < p < 1.0 for p in entry["probabilities"].values())
            assert entry["positive"] == [k for k, p in entry["probabilities"].items()
                                         if p >= document["thresholds"][k]]
        else:
            assert entry["probabilities"] is None and entry["positive"] is None
            assert entry["error"].startswith(str(root / name)), entry["error"]  # names the file
            assert "\n" not in entry["error"]
            if outcome not in (None, "any"):
                assert outcome in entry["error"], f"{name}: {entry['error']}"
            # the same message on stderr, one line per failed file
            assert f"error: {entry['error']}".encode("utf-8", "backslashreplace").decode() in completed.stderr
    assert results["given_directly.png"]["error"] is None
    assert "no such file" in results["missing.png"]["error"]
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == sum(entry["error"] is not None for entry in document["results"])

    assert peak_pss < MEMORY_BUDGET and children < MEMORY_BUDGET


def test_text_output_survives_odd_file_names(corpus, checkpoint, tmp_path):
    """Without --json, file names that are not UTF-8 are printed escaped, not a crash."""
    odd = tmp_path / os.fsdecode(b"scan \xe9.png")
    Image.fromarray(draw_ecg_page(seed=4)).save(odd)
    status = main([str(odd), "--checkpoint", str(checkpoint)])
    assert status == 0


# --- limits of the reader, one at a time ----------------------------------------------------

def test_bombs_are_refused_before_decoding(tmp_path):
    """A header claiming 100000 x 100000 px, and a PNG inflating to 144 MP, cost neither time nor memory."""
    for name, data in {"claims.png": png_bytes(100_000, 100_000, rows=b"\x00" * 1000),
                       "inflates.png": png_bytes(12_000, 12_000)}.items():
        path = tmp_path / name
        path.write_bytes(data)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        with pytest.raises(ValueError, match="large|MP") as error:
            load_image(path)
        assert str(path) in str(error.value)
        assert time.monotonic() - started < 1.0
        assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024 < 50 << 20


def test_large_pdf_page_is_rasterised_under_the_cap(tmp_path):
    path = tmp_path / "poster.pdf"
    Image.fromarray(draw_ecg_page(seed=1)).save(path, format="PDF", resolution=10)  # 200 x 76 inch page
    image = load_image(path)
    assert image.shape[0] * image.shape[1] <= PDF_MAX_PIXELS * 1.01
    assert abs(image.shape[1] / image.shape[0] - 2000 / 760) < 0.02


def test_large_jpeg_is_decoded_at_reduced_size(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (9000, 6000), (250, 250, 250)).save(path, quality=50)  # 54 MP
    image = load_image(path)
    assert image.shape[:2] == (3000, 4500) and image.shape[0] * image.shape[1] <= MAX_IMAGE_PIXELS


# --- per-file process limits: time, crashes, memory -----------------------------------------

@pytest.fixture(scope="module")
def classifier(checkpoint):
    return load_classifier(checkpoint, device="cpu")


@pytest.fixture()
def two_pages(tmp_path) -> list[Path]:
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"page{seed}.png")
        Image.fromarray(draw_ecg_page(seed=seed)).save(paths[-1])
    return paths


def _misbehave_on(name: str, action):
    """A stand-in for :func:`predict._prepare_file` that runs ``action`` on the file called ``name``."""
    real = predict._prepare_file

    def prepare(path, height, width, ecg_check):
        if Path(path).name == name:
            action()
        return real(path, height, width, ecg_check)
    return prepare


@pytest.mark.skipif(not predict.can_isolate_files(), reason="files are read in threads where fork is unavailable")
# The limit also applies to the good page, so it is generous except where the hang is the point:
# 3 s leaves a loaded CI machine time to read a page (about 0.3 s alone).
@pytest.mark.parametrize("action, message, file_timeout", [
    (lambda: time.sleep(60), "gave up after 3 s", 3.0),
    (lambda: os.kill(os.getpid(), 11), "crashed on this file (killed by SIGSEGV)", 30.0),
    (lambda: np.ones(3 << 30, np.uint8), "ran out of memory", 30.0),
    (lambda: os._exit(3), "crashed on this file (exit status 3)", 30.0),
], ids=["hang", "segfault", "memory", "exit"])
def test_a_misbehaving_reader_costs_only_its_file(monkeypatch, classifier, two_pages, action, message, file_timeout):
    monkeypatch.setattr(predict, "_prepare_file", _misbehave_on("page1.png", action))
    started = time.monotonic()
    results = predict_files(two_pages, classifier, file_timeout=file_timeout, workers=2)
    assert time.monotonic() - started < 20
    assert [r.file for r in results] == [str(p) for p in two_pages]
    assert results[0].error.startswith(str(two_pages[0])) and message in results[0].error, results[0].error
    assert results[1].error is None and results[1].probabilities is not None


def test_reading_in_threads_gives_the_same_results(classifier, two_pages, corpus):
    root, _ = corpus
    files = [*two_pages, root / "empty.png", root / "folder.png", root / "bomb_inflating.png"]
    forked = predict_files(files, classifier, workers=2)
    threaded = predict_files(files, classifier, workers=2, isolate=False)
    assert [r.as_json() for r in forked] == [r.as_json() for r in threaded]


def test_a_failing_model_batch_is_reported_per_file(monkeypatch, classifier, two_pages):
    def broken(batch):
        raise RuntimeError("CUDA out of memory\nTried to allocate 2 GiB")
    monkeypatch.setattr(classifier, "read", broken)  # what predict_files calls
    results = predict_files(two_pages, classifier)
    assert all("model failed on this batch (RuntimeError: CUDA out of memory Tried" in r.error for r in results)


# --- what stops the whole run: exit 2, one line ---------------------------------------------

def assert_refused(capsys, argv, fragment: str) -> str:
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and TRACEBACK not in captured.err, captured.err
    assert fragment in lines[0], lines[0]
    assert captured.out == ""
    return lines[0]


@pytest.mark.parametrize("device, fragment", [("tpu9", "'tpu9' is not a torch device"),
                                              ("cuda:x", "is not a torch device"),
                                              ("meta", "--device meta: cannot be used")])
def test_bad_device(capsys, corpus, checkpoint, device, fragment):
    root, _ = corpus
    assert_refused(capsys, [str(root / "good_print_a.png"), "--checkpoint", str(checkpoint), "--device", device],
                   fragment)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable CUDA GPU")
def test_cuda_on_a_cpu_machine_is_not_called_a_corrupt_checkpoint(capsys, corpus, checkpoint):
    root, _ = corpus
    line = assert_refused(capsys, [str(root / "good_print_a.png"), "--checkpoint", str(checkpoint),
                                   "--device", "cuda"], "no usable CUDA GPU")
    assert "corrupt" not in line


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device_classifies(capsys, corpus, checkpoint):
    root, _ = corpus
    assert main([str(root / "good_print_a.png"), "--checkpoint", str(checkpoint), "--device", "cuda"]) == 0
    count = torch.cuda.device_count()
    assert_refused(capsys, [str(root / "good_print_a.png"), "--checkpoint", str(checkpoint),
                            "--device", f"cuda:{count}"], f"has {count} CUDA device(s)")


def _mismatched(tmp_path: Path) -> Path:
    """mobilenetv3 weights at width 0.25 described as width 0.5."""
    path = write_checkpoint(tmp_path / "mismatched.pt")
    payload = torch.load(path, weights_only=True)
    payload["model_options"] = {**payload["model_options"], "width_mult": 0.5}
    return save_checkpoint(payload, path)


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: tmp / "absent.pt", "not found"),
    (lambda tmp: (tmp / "garbage.pt").write_bytes(b"PK\x03\x04 not a zip") and tmp / "garbage.pt", "corrupt"),
    (_mismatched, "weights do not fit model 'mobilenetv3'"),
    (lambda tmp: write_checkpoint(tmp / "wide.pt", "resnet18", model_options={"base_width": 10**9}),
     "refusing model option base_width=1000000000"),
    (lambda tmp: write_checkpoint(tmp / "widef.pt", model_options={"variant": "small", "width_mult": 4000.0}),
     "weights do not fit"),
    (lambda tmp: write_checkpoint(tmp / "nan.pt", model_options={"variant": "small", "width_mult": float("nan")}),
     "not a finite number"),
    (lambda tmp: write_checkpoint(tmp / "typo.pt", model_options={"variant": "small", "widht_mult": 0.25}),
     "unknown option"),
    (lambda tmp: write_checkpoint(tmp / "unknown.pt", model_name="gpt5"), "unknown model 'gpt5'"),
    (lambda tmp: write_checkpoint(tmp / "huge_input.pt", input={"image_height": 10**6, "image_width": 128}),
     "training image size"),
    (lambda tmp: write_checkpoint(tmp / "thresholds.pt", thresholds={label: "high" for label in LABELS}),
     "stored thresholds are not numbers"),
    (lambda tmp: write_checkpoint(tmp / "signal.pt", "inception_time"), "signal-only model"),
], ids=["missing", "corrupt", "mismatched", "huge-int-option", "huge-float-option", "nan-option", "unknown-option",
        "unknown-model", "huge-input-size", "bad-thresholds", "signal-model"])
def test_unusable_checkpoint(capsys, tmp_path, corpus, make, fragment):
    root, _ = corpus
    started = time.monotonic()
    assert_refused(capsys, [str(root / "good_print_a.png"), "--checkpoint", str(make(tmp_path))], fragment)
    assert time.monotonic() - started < 10  # refused before building anything large


def test_bad_options(capsys, corpus, checkpoint):
    root, _ = corpus
    base = [str(root / "good_print_a.png"), "--checkpoint", str(checkpoint)]
    assert_refused(capsys, [*base, "--file-timeout", "0"], "--file-timeout")
    assert_refused(capsys, [*base, "--workers", "0"], "--workers")
