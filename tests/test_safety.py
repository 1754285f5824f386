"""Inputs are sacred: every way a careless command line could destroy or corrupt data, through the real CLI.

Each case was first reproduced against the code before issue R (where it overwrote an original, enhanced its
own outputs, corrupted an output, clipped a 16-bit image to white, stopped a folder job at the first bad
file, or printed a traceback) and is refused, skipped or handled here.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision.errors import OutputError
from nightvision.io.atomic import AtomicFile, atomic_path, describe_os_error, remove_stale_temp_files
from nightvision.io.images import fit_format, write_image
from nightvision.io.video import VideoReader, VideoWriter
from tests.conftest import dark_frame, run_cli


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nightvision: error:"), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def main_says_one_line(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``nightvision ARGV`` in this process ends with exit 2 and one error line that contains ``named``."""
    from nightvision.cli import main

    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own exit
        code = int(stop.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nightvision: error:") and named in lines[0], err


def write_clip(path: Path, frames: int = 12, size: tuple[int, int] = (48, 64)) -> Path:
    with VideoWriter(path, size[1], size[0], 24) as w:
        for i in range(frames):
            w.write(dark_frame(*size, seed=i))
    return path


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), dark_frame(20, 30, seed=1))
    cv2.imwrite(str(folder / "sub" / "b.jpg"), dark_frame(22, 32, seed=2))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_image_is_never_enhanced_onto_itself(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), dark_frame(20, 30))
    before = photo.read_bytes()
    one_line_error(run_cli("enhance", str(photo), "-o", str(photo)), "is the input")
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    one_line_error(run_cli("enhance", str(photo), "-o", str(link), "--overwrite"), "is the input")
    assert photo.read_bytes() == before


def test_a_folder_job_into_its_own_folder_is_refused(photos: Path) -> None:
    before = snapshot(photos)
    one_line_error(run_cli("enhance", str(photos), "-o", str(photos), "--overwrite"), "input folder")
    assert snapshot(photos) == before


def test_an_output_folder_inside_the_input_is_skipped_on_the_next_run(photos: Path) -> None:
    out = photos / "out"
    first = run_cli("enhance", str(photos), "-o", str(out), "-q")
    assert first.returncode == 0, first.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.*")) == ["a.png", "sub/b.jpg"]
    originals = {k: v for k, v in snapshot(photos).items() if not k.startswith("out")}
    one_line_error(run_cli("enhance", str(photos), "-o", str(out)), "2 of the 2 outputs already exist", "--overwrite")
    second = run_cli("enhance", str(photos), "-o", str(out), "-q", "--overwrite")
    assert second.returncode == 0, second.stderr
    assert "skipped 2 file(s) inside the output folder" in second.stdout
    assert not (out / "out").exists()  # its own outputs were not enhanced again
    assert {k: v for k, v in snapshot(photos).items() if not k.startswith("out")} == originals


def test_a_folder_job_refuses_a_file_name_for_its_output(photos: Path, tmp_path: Path) -> None:
    """``enhance photos/ -o out/x.png`` used to make a folder named ``x.png``."""
    from nightvision.stream.jobs import plan_enhance

    with pytest.raises(OutputError, match="names a file; give a folder such as"):
        plan_enhance(photos, tmp_path / "out" / "x.png")
    assert not (tmp_path / "out").exists()


def test_run_never_writes_onto_its_input(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "r.mp4")
    before = clip.read_bytes()
    one_line_error(run_cli("run", str(clip), "--headless", "-o", str(clip), "--overwrite"), "is the input")
    assert clip.read_bytes() == before


def test_the_same_output_twice_is_refused(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "r.mp4")
    out = tmp_path / "a.mp4"
    one_line_error(run_cli("run", str(clip), "--headless", "-o", str(out), "-o", str(out)), "given twice")
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


def test_an_existing_output_needs_overwrite(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), dark_frame(20, 30))
    out = tmp_path / "bright.png"
    out.write_bytes(b"precious")
    one_line_error(run_cli("enhance", str(photo), "-o", str(out)), "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    clip = write_clip(tmp_path / "r.mp4")
    video_out = tmp_path / "v.mp4"
    video_out.write_bytes(b"precious")
    one_line_error(run_cli("run", str(clip), "--headless", "-o", str(video_out)), "already exists", "--overwrite")
    assert video_out.read_bytes() == b"precious"
    assert run_cli("enhance", str(photo), "-o", str(out), "--overwrite", "-q").returncode == 0
    assert cv2.imread(str(out)).shape == (20, 30, 3)


def test_a_failed_output_leaves_no_folder_it_made(tmp_path: Path) -> None:
    """A job that fails (here a truncated video) leaves neither its file nor the folders made for it."""
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(write_clip(tmp_path / "ok.mp4").read_bytes()[:2000])
    one_line_error(run_cli("enhance", str(bad), "-o", str(tmp_path / "new" / "sub" / "x.mp4")))
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    (kept / "other.txt").parent.mkdir()
    (kept / "other.txt").write_text("mine")
    out = AtomicFile(kept / "deeper" / "x.mp4")
    out.tmp.write_bytes(b"half")
    (kept / "deeper" / "y.png").write_bytes(b"written meanwhile")
    out.discard()
    assert not out.tmp.exists() and (kept / "deeper" / "y.png").is_file() and (kept / "other.txt").is_file()


def test_temporary_names_are_unique_per_output_and_stale_ones_are_removed(tmp_path: Path) -> None:
    a, b = AtomicFile(tmp_path / "x.mp4"), AtomicFile(tmp_path / "x.mp4")
    assert a.tmp != b.tmp and a.tmp.suffix == ".mp4" and str(os.getpid()) in a.tmp.name
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.tmp-{dead.pid}-0.mp4"
    stale_old_style = tmp_path / f".out.tmp-{dead.pid}.png"
    alive = tmp_path / f".out.tmp-{os.getppid()}-3.mp4"  # our parent is running
    unrelated = tmp_path / ".notes.tmp-x.txt"
    for p in (stale, stale_old_style, alive, unrelated):
        p.write_bytes(b"half")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted([stale, stale_old_style])
    assert alive.exists() and unrelated.exists()
    # the CLI cleans the folder it writes into
    stale.write_bytes(b"half")
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), dark_frame(20, 30))
    assert run_cli("enhance", str(photo), "-o", str(tmp_path / "bright.png"), "-q").returncode == 0
    assert not stale.exists() and alive.exists()


def test_two_video_outputs_of_one_run_are_both_complete(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "r.mp4", frames=20)
    a, b = tmp_path / "a.mp4", tmp_path / "sub" / "a.mp4"
    result = run_cli("run", str(clip), "--headless", "-q", "-o", str(a), "-o", str(b))
    assert result.returncode == 0, result.stderr
    for out in (a, b):
        with VideoReader(out) as r:
            assert len(list(r.frames())) == 20


def test_16_bit_png_to_jpeg_is_scaled_not_clipped(tmp_path: Path) -> None:
    src = tmp_path / "deep.png"
    dark16 = dark_frame(40, 60).astype(np.uint16) * 257
    cv2.imwrite(str(src), dark16)
    out = tmp_path / "deep.jpg"
    result = run_cli("enhance", str(src), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    jpeg = cv2.imread(str(out))
    assert jpeg.dtype == np.uint8 and (jpeg == 255).mean() < 0.01  # 94-100 % white before the fix
    assert 30 < jpeg.mean() < 200
    reported = float(result.stdout.split("mean luma ")[1].split(" -> ")[1])
    luma = cv2.cvtColor(jpeg, cv2.COLOR_BGR2GRAY).mean()
    assert abs(reported - luma) < 3, (reported, luma)  # the summary describes the file written
    # 16-bit PNG to 16-bit PNG keeps its depth
    assert run_cli("enhance", str(src), "-o", str(tmp_path / "deep-out.png"), "-q").returncode == 0
    assert cv2.imread(str(tmp_path / "deep-out.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_fit_format_converts_depth_and_layout() -> None:
    img16 = np.full((4, 5, 3), 40000, np.uint16)
    assert fit_format(img16, ".jpg").dtype == np.uint8 and fit_format(img16, ".jpg")[0, 0, 0] == 156
    assert fit_format(img16, ".png").dtype == np.uint16
    assert fit_format(np.zeros((4, 5, 4), np.uint8), ".jpg").shape == (4, 5, 3)
    assert fit_format(np.zeros((4, 5), np.uint8), ".ppm").shape == (4, 5, 3)
    assert fit_format(np.zeros((4, 5, 3), np.uint8), ".pgm").shape == (4, 5)


def test_a_folder_job_goes_on_past_bad_files_and_lists_them(photos: Path, tmp_path: Path) -> None:
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (photos / "sub" / "fake.mp4").write_text("not a video\n" * 20)
    out = tmp_path / "out"
    result = run_cli("enhance", str(photos), "-o", str(out), "-q")
    assert result.returncode == 1, result.stderr
    failures = [line for line in result.stderr.splitlines() if line.startswith("nightvision: failed:")]
    assert len(failures) == 2 and "broken.jpg" in failures[0] and "fake.mp4" in failures[1], result.stderr
    assert "2 of 4 files failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "a.png").is_file() and (out / "sub" / "b.jpg").is_file()
    assert not (out / "broken.jpg").exists() and not list(out.rglob(".*tmp*"))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ("enhance IN -o OUT.mp4 --crf -5", "--crf: must be in 0-51"),
        ("enhance IN -o OUT.mp4 --crf 999", "--crf: must be in 0-51"),
        ("enhance IN -o OUT.mp4 --crf abc", "--crf: expected a whole number"),
        ("enhance IN -o OUT.mp4 --threads -1", "--threads"),
        ("enhance IN -o OUT.mp4 --downscale 0", "--downscale"),
        ("demo -o OUT --threads 5000", "--threads"),
        ("run IN --headless --loop -2", "--loop"),
        ("run IN --headless --fps 0", "--fps"),
        ("run IN --headless --fps -30", "--fps"),
        ("run IN --headless --size 0x720", "--size"),
        ("run IN --headless --size huge", "--size"),
        ("run IN --headless --width -640 --height 480", "--width"),
        ("run IN --headless --width 640", "--size"),
        ("run IN --headless --crf 52", "--crf"),
        ("bench --seconds 0", "--seconds"),
        ("bench --warmup -1", "--warmup"),
        ("bench --sizes 720p,12x", "--sizes"),
        ("build MODEL --max 1920", "--max"),
        ("build MODEL --workspace -2", "--workspace"),
        ("eval --data IN --limit -3", "--limit"),
        ("export MODEL -o OUT.onnx --opset 3", "--opset"),
    ],
)
def test_numeric_options_are_range_checked_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: str, named: str
) -> None:
    argv = [
        str(tmp_path / "in.mp4") if a == "IN" else str(tmp_path / a) if a.startswith("OUT") else a
        for a in args.replace("MODEL", "zero-dce").split()
    ]
    main_says_one_line(argv, named, capsys)
    assert not list(tmp_path.iterdir())


def test_output_errors_name_the_output_and_the_cause(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), dark_frame(20, 30))
    one_line_error(
        run_cli("enhance", str(photo), "-o", str(photo / "x.png")), f"{photo} is a file, not a folder", "x.png"
    )
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        line = one_line_error(run_cli("enhance", str(photo), "-o", str(locked / "x.png")), "permission denied")
        assert str(locked / "x.png") in line and "tmp-" not in line
    elif Path("/sys").is_dir() and not os.access("/sys", os.W_OK):
        line = one_line_error(run_cli("enhance", str(photo), "-o", "/sys/nightvision-x.png"), "permission denied")
        assert "/sys/nightvision-x.png" in line and "tmp-" not in line
    # a failure while writing names the real output, never the temporary file
    with (
        pytest.raises(OutputError, match=r"cannot write .*stats\.json: disk full$"),
        atomic_path(tmp_path / "stats.json"),
    ):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not list(tmp_path.glob(".stats*"))
    assert describe_os_error(PermissionError(errno.EACCES, "x")) == "permission denied"
    with pytest.raises(OutputError, match=r"cannot write .*y\.png: .*photo\.png is a file, not a folder"):
        write_image(photo / "y.png", dark_frame(4, 4))


def test_no_opencv_or_ffmpeg_noise_around_our_errors(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 50)
    one_line_error(run_cli("enhance", str(fake), "-o", str(tmp_path / "o.mp4")), "fake.mp4")
    one_line_error(run_cli("run", "http://127.0.0.1:9/stream.mjpg", "--headless"), "cannot open")
    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), dark_frame(10, 12)[:, :, 0])
    result = run_cli("enhance", str(grey), "-o", str(tmp_path / "g.ppm"), "-q")  # PPM needs colour: converted
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_sigterm_during_a_folder_job_keeps_finished_files(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), dark_frame(20, 30))
    frames = [dark_frame(180, 320, seed=i) for i in range(5)]
    with VideoWriter(folder / "b.mp4", 320, 180, 30, preset="ultrafast") as w:
        for i in range(1500):
            w.write(frames[i % 5])
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightvision", "enhance", str(folder), "-o", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out / "a.png").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    assert proc.poll() is None, proc.communicate()
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 143, err
    assert "1 of 2 files done" in err and "interrupted by SIGTERM at frame" in err and "of 1500 of" in err, err
    assert (out / "a.png").is_file() and not (out / "b.mp4").exists()
    with VideoReader(out / "b.partial.mp4") as r:
        assert 0 < len(list(r.frames())) < 1500
    assert not list(out.glob(".*tmp*"))


def test_check_outputs_finds_an_input_among_many_by_path_symlink_or_hard_link(tmp_path: Path) -> None:
    """Thousands of inputs and outputs are checked by lookups (one pass each), and every way an output can name
    an input is still caught: the same path spelt differently, a symlink either way, a hard link."""
    from nightvision.io.outputs import check_outputs

    src = tmp_path / "in"
    src.mkdir()
    inputs = [src / f"{i:04d}.png" for i in range(3000)]
    for path in inputs[:5]:
        path.write_bytes(b"x")
    outputs = [tmp_path / "out" / p.name for p in inputs]
    check_outputs(inputs, outputs, overwrite=False)  # all distinct: fine
    (tmp_path / "link.png").symlink_to(inputs[1])
    os.link(inputs[2], tmp_path / "hard.png")
    (tmp_path / "to-out.png").symlink_to(outputs[7])
    for out, named in [
        (src / ".." / "in" / "0000.png", "0000.png"),
        (tmp_path / "link.png", "0001.png"),
        (tmp_path / "hard.png", "0002.png"),
        (inputs[2999], "2999.png"),  # does not exist yet: the same path all the same
    ]:
        with pytest.raises(OutputError, match=f"is the input .*{named}"):
            check_outputs(inputs, [*outputs[:10], out], overwrite=False)
    with pytest.raises(OutputError, match=r"is the input .*to-out\.png"):  # an input that links to an output
        check_outputs([*inputs, tmp_path / "to-out.png"], outputs, overwrite=False)
    with pytest.raises(OutputError, match="given twice"):
        check_outputs(inputs, [outputs[3], tmp_path / "out" / "." / "0003.png"], overwrite=False)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ("enhance PHOTO -o OUT.png --denoize", "did you mean --denoise? (see `nightvision enhance --help`)"),
        ("run 0 --headles", "did you mean --headless? (see `nightvision run --help`)"),
        ("bench --model zero-dce++", "did you mean --models?"),  # no abbreviations: --model is not --models
        ("bench --backends nope", "unknown backend 'nope'"),
        ("bench --backends torch:fp17", "unknown torch option(s) fp17"),
        ("bench --pipeline OUT.mp4", "no such video for --pipeline"),
        ("build OUT.onnx", "no such ONNX graph"),  # (said TensorRT was missing)
        ("build PHOTO", "build takes a registered model name or an .onnx graph"),  # (said unknown model)
        ("export zero-dce++ --instances 3 -o OUT.onnx", "--instances goes with --format triton"),  # (was ignored)
        ("export zero-dce++ --format triton --weights W.pt -o OUT", "export it first"),
        ("export zero-dce++ --format triton --fp16 -o OUT", "to serve an fp16 graph, export it with --fp16"),
        ("export zero-dce++ --format triton --onnx PHOTO -o OUT", "is not an ONNX graph ONNX Runtime can load"),
        ("bench --pipeline PHOTO", "--pipeline takes a video file, and"),  # (named a temp file of its own)
        ("bench --pipeline FOLDER", "is a folder"),
        ("eval --data PHOTO", "--data takes a folder"),
        ("demo PHOTO -o OUT", "the demo takes a video"),
        ("demo FOLDER -o OUT", "is a folder; enhance folders with `nightvision enhance`"),
        ("enhance PHOTO -o OUTLONG.png", "the name is too long"),  # not "[Errno 36] File name too long"
        ("enhance PHOTO -o EMPTY", "the output name is empty"),
        ("run rtsp:// --headless", "no host in 'rtsp://'"),
        ("run synthetic://?fsp=30 --headless", "unknown setting(s) fsp"),
        ("run synthetic://?frames=3 --headless -o null:// --loop 2", "--loop repeats a video file or a folder"),
        ("run PHOTO --headless -o null:// --retries 5", "--retries counts tries to open a network stream"),
        ("enhance PHOTO -o OUT.png -m nafnet-s --exact", "nafnet-s has none: leave it out"),
        ("run synthetic://?frames=3 --headless -o null:// -m curve-denoise --smooth", "curve-denoise has none"),
        ("enhance PHOTO -o OUT.png -m ZERO-DCE++", "did you mean 'zero-dce++'"),
        ("run synthetic:// --headless -o ftp://host/x/", "ftp:// is not an output"),
    ],
)
def test_usage_mistakes_get_one_line_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: str, named: str
) -> None:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), dark_frame(20, 30))
    (tmp_path / "folder").mkdir()
    subs = {"PHOTO": str(photo), "EMPTY": "", "FOLDER": str(tmp_path / "folder"), "OUTLONG.png": "x" * 300 + ".png"}
    argv = [subs.get(a, str(tmp_path / a) if a.startswith("OUT") else a) for a in args.split()]
    main_says_one_line(argv, named, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "photo.png"]


def test_verbose_may_follow_the_command_and_old_option_names_still_work() -> None:
    from nightvision.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["-v", "run", "0"]).verbose == 1
    assert parser.parse_args(["run", "0", "-vv"]).verbose == 2
    assert parser.parse_args(["run", "0"]).verbose == 0
    bench = parser.parse_args(["bench", "-m", "zero-dce", "--no-denoise"])
    assert bench.models == "zero-dce" and bench.no_denoise_rows
    assert parser.parse_args(["batch", "x", "-o", "y", "--retries", "4"]).task_retries == 4
    assert parser.parse_args(["batch", "x", "-o", "y"]).task_retries == 2
    assert parser.parse_args(["batch", "x", "-o", "y", "--chunk-seconds", "0"]).chunk_seconds == 0  # "0: never"


def test_a_broken_training_recipe_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nightvision.cli import main

    broken, odd = tmp_path / "b.toml", tmp_path / "c.toml"
    broken.write_text('model = "zero-dce++\ncrop = 64\n')  # an unclosed string
    odd.write_text("model = 5\n")
    for recipe, named in ((broken, "cannot read the recipe"), (odd, "model must be a model name")):
        assert main(["train", "--config", str(recipe)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], lines


def test_an_interrupted_folder_job_resumes_with_skip_existing(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rerun keeps the complete outputs (written atomically, so an existing one is whole) and does the rest."""
    from nightvision.cli import main

    cv2.imwrite(str(photos / "c.png"), dark_frame(20, 30, seed=3))
    out = tmp_path / "out"
    assert main(["enhance", str(photos), "-o", str(out), "-q", "-m", "zero-dce++"]) == 0
    (out / "sub" / "b.jpg").unlink()  # as if the job had been stopped before it
    kept = {name: (out / name).stat().st_mtime_ns for name in ("a.png", "c.png")}
    capsys.readouterr()
    assert main(["enhance", str(photos), "-o", str(out), "-q", "-m", "zero-dce++"]) == 2
    assert "or --skip-existing to keep them and enhance the rest" in capsys.readouterr().err
    assert main(["enhance", str(photos), "-o", str(out), "-q", "-m", "zero-dce++", "--skip-existing"]) == 0
    said = capsys.readouterr().out
    assert "enhanced 1 file(s)" in said and "(kept 2 existing output(s))" in said, said
    assert (out / "sub" / "b.jpg").is_file()
    assert {name: (out / name).stat().st_mtime_ns for name in kept} == kept  # untouched
    assert main(["enhance", str(photos), "-o", str(out), "-q", "-m", "zero-dce++", "--skip-existing"]) == 0
    said = capsys.readouterr().out  # (said "mean luma 0.0 -> 0.0")
    assert said.startswith("nothing left to enhance") and "(kept 3 existing output(s))" in said, said
    assert main(["enhance", str(photos), "-o", str(out), "--skip-existing", "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err
