"""The ``nightvision`` command: a thin layer over the API. Each sub-command parses and calls one function.

Only this module configures logging (ours, OpenCV's and FFmpeg's) and prints. Exit codes: 0 done; 1 a
folder job finished but some files failed (each listed on stderr); 2 an error the user can fix (one line on
stderr: a bad option, a missing input, an output that would overwrite something); 130 stopped by SIGINT
(Ctrl-C) and 143 by SIGTERM, after saying where the job stopped and what it kept.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from nightvision.allocator import keep_freed_memory
from nightvision.enhancer import DEFAULT_MODEL
from nightvision.errors import InputError, NightvisionError

if TYPE_CHECKING:
    from nightvision.enhancer import Enhancer
    from nightvision.stream.jobs import EnhanceReport, Progress
    from nightvision.stream.pipeline import PipelineStats

__all__ = ["build_parser", "main"]

log = logging.getLogger("nightvision")

EXIT_FAILURES = 1  # a folder job went on past files that failed
EXIT_ERROR = 2
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


# --- argument types: every number range-checked, every size written one way --------------------------------
def _int_in(lo: int, hi: int, hint: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be in {lo}-{hi}{hint}, got {value}")
        return value

    return parse


def _float_in(lo: float, hi: float, hint: str = "", *, zero: bool = False) -> Callable[[str], float]:
    """A number in ``(lo, hi]`` (``zero``: or exactly 0, an option's "off")."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (lo < value <= hi or (zero and value == 0)):
            off = " (or 0)" if zero else ""
            raise argparse.ArgumentTypeError(f"must be above {lo:g} and at most {hi:g}{off}{hint}, got {value:g}")
        return value

    return parse


def _size(text: str) -> str:
    from nightvision.io.sizes import parse_size

    try:
        parse_size(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _sizes(text: str) -> list[str]:
    sizes = [_size(s) for s in text.split(",") if s.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("expected comma-separated sizes, e.g. 720p,1920x1080")
    return sizes


THREADS = _int_in(0, 1024, " (0: one per core)")
CRF = _int_in(0, 51, " (x264: lower is better, 18 looks lossless)")


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped paragraph by paragraph, examples kept as written, and each option's default shown
    when it has a meaningful one."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if block.startswith("examples:"):
                blocks.append("\n".join(indent + line for line in block.splitlines()))
            else:
                blocks.append(
                    textwrap.fill(" ".join(block.split()), width, initial_indent=indent, subsequent_indent=indent)
                )
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default is None or default is argparse.SUPPRESS or isinstance(default, bool):
            return text
        if default in ([], ""):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error of the command; no abbreviated options (``--model``
    must not quietly mean ``--models``); a misspelt option gets a suggestion and its own command's help."""

    commands: dict[str, argparse.ArgumentParser]  # the subcommands' parsers (set on the top-level parser)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.commands = {}

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"nightvision: error: {message} (see `{self.prog} --help`)\n")

    def unrecognized(self, extras: Sequence[str]) -> NoReturn:
        """Refuse arguments this (sub)command does not take, suggesting the nearest option of its own."""
        import difflib

        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        hints = []
        for arg in extras:
            if arg.startswith("--"):
                close = difflib.get_close_matches(arg.split("=", 1)[0], options, n=1, cutoff=0.7)
                hints += [f"did you mean {close[0]}?"] if close else []
        hint = f"; {' '.join(hints)}" if hints else ""
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


# --- shared options ------------------------------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", "-m", default=DEFAULT_MODEL, help="registered model (see `nightvision models`)")
    g.add_argument(
        "--backend",
        "-b",
        default="auto",
        choices=["auto", "tensorrt", "onnxruntime", "torch"],
        help="auto: TensorRT with a built plan, else PyTorch on a CUDA GPU, else ONNX Runtime",
    )
    g.add_argument("--onnx", metavar="FILE", help="run this ONNX file instead of the shipped one (onnxruntime)")
    g.add_argument("--weights", metavar="FILE", help="run this checkpoint instead of the shipped weights")
    g.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (torch backend)")
    g.add_argument("--threads", type=THREADS, default=0, help="CPU threads for ONNX Runtime (0: one per core)")
    g.add_argument(
        "--downscale",
        type=_int_in(1, 64),
        metavar="N",
        help="curve models: estimate the curve at 1/N size (default: a ~96-px copy at any size)",
    )
    g.add_argument(
        "--exact",
        action="store_true",
        help="run the full ONNX graph instead of a fast path (zero-dce++: curve lookup; curve-denoise: OpenCV apply)",
    )


def _add_crf(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--crf",
        type=CRF,
        default=18,
        metavar="0-51",
        help="quality of video outputs on x264's scale, lower is better (.webm: VP9, scaled to its own)",
    )


def _exposure(text: str) -> float | None:
    """``--exposure``: auto (the default target), off, or a mean luma 20-235."""
    if text == "off":
        return None
    if text == "auto":
        from nightvision.stream.exposure import DEFAULT_TARGET

        return DEFAULT_TARGET
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or a mean luma 20-235, got {text!r}") from None
    if not 20.0 <= value <= 235.0:
        raise argparse.ArgumentTypeError(f"the exposure target must be a mean luma between 20 and 235, got {text}")
    return value


def _add_picture_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("picture")
    g.add_argument(
        "--denoise",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="temporal denoiser on the dark input before the model (motion-adaptive, luma and chroma; video "
        "only: still images pass by it)",
    )
    g.add_argument(
        "--exposure",
        type=_exposure,
        default="auto",
        metavar="auto|off|LUMA",
        help="output brightness: dark input is brought to LUMA (auto: 110 of 255), visible input is left near "
        "its own brightness, smoothly over time; off: what the model gives",
    )


def _stages(args: argparse.Namespace) -> dict[str, list[Any]]:
    """The frame stages the picture options ask for, as ``pre_stages`` / ``post_stages`` keywords."""
    pre: list[Any] = []
    post: list[Any] = []
    if getattr(args, "denoise", False):
        from nightvision.stream.denoise import TemporalDenoiser

        pre.append(TemporalDenoiser())  # (its output's dtype: the model's, set by the pipeline)
    target = getattr(args, "exposure", None)
    if target is not None:
        from nightvision.stream.exposure import ExposureControl

        post.append(ExposureControl(target=target))
    return {"pre_stages": pre, "post_stages": post}


def _enhancer(args: argparse.Namespace) -> Callable[[], Enhancer]:
    """The model the options name, loaded only when called (after the job has checked its outputs)."""

    def load() -> Enhancer:
        from nightvision.enhancer import Enhancer
        from nightvision.specs import get_spec

        spec = get_spec(args.model)
        if args.exact and not (spec.estimator_onnx or spec.coefficients_onnx):  # (the API takes it, for any model)
            raise InputError(f"--exact runs the full graph instead of a fast path; {spec.name} has none: leave it out")
        return Enhancer(
            args.model,
            args.backend,
            onnx_path=args.onnx,
            weights=args.weights,
            device=args.device,
            threads=args.threads,
            downscale=args.downscale,
            exact=args.exact,
        )

    return load


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true", help="replace outputs that already exist (else refused)")


class _Status:
    """A one-line status on stderr: rewritten in place on a terminal, one line a second otherwise."""

    def __init__(self, quiet: bool, *, only_tty: bool = False) -> None:
        self.tty = sys.stderr.isatty()
        self.enabled = not quiet and (self.tty or not only_tty)
        self.shown = False

    def __call__(self, line: str) -> None:
        if self.enabled:
            print(("\r\033[K" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr, flush=True)
            self.shown = True

    def end(self) -> None:
        if self.shown and self.tty:
            print(file=sys.stderr)
        self.shown = False


def _progress(status: _Status) -> Callable[[Progress], None]:
    def show(p: Progress) -> None:
        s = p.stats
        where = f"frame {s.frames_out}" + (f" of {s.frame_count}" if s.frame_count > 1 else "")
        files = f"[{p.index}/{p.files}] " if p.files > 1 else ""
        status(f"{files}{p.path.name}: {where} | {s.fps_out_now:.1f} fps")

    return show


def _stopped(report_stopped_by: str, where: str, kept: Path | None) -> int:
    what = f"; kept the frames done as {kept} (playable)" if kept else "; the output in progress was discarded"
    print(f"nightvision: interrupted by {report_stopped_by} at {where}{what}", file=sys.stderr)
    return EXIT_SIGNAL.get(report_stopped_by, 130)


def _finish_job(report: EnhanceReport, output: str) -> int:
    if report.stopped_by:
        done = f"{report.files} of {report.total_files} files done" if report.total_files > 1 else ""
        if done:
            print(f"nightvision: {done} ({report.frames} frames)", file=sys.stderr)
        return _stopped(report.stopped_by, report.stopped_at, report.partial)
    skipped = f" (skipped {report.skipped} file(s) inside the output folder)" if report.skipped else ""
    skipped += f" (kept {report.kept} existing output(s))" if report.kept else ""
    if report.total_files == 1 and len(report.outputs) == 1:
        output = str(report.outputs[0])  # the file itself, where -o named its folder
    if report.frames:
        print(
            f"enhanced {report.files} file(s), {report.frames} frame(s) in {report.seconds:.1f} s "
            f"({report.fps:.1f} FPS); mean luma {report.luma_in:.1f} -> {report.luma_out:.1f} -> {output}{skipped}"
        )
    else:  # (--skip-existing with every output there: no luma to tell)
        print(f"nothing left to enhance -> {output}{skipped}")
    for path, reason in report.failures:
        print(f"nightvision: failed: {path}: {reason}", file=sys.stderr)
    if report.failures:
        print(f"nightvision: error: {len(report.failures)} of {report.total_files} files failed", file=sys.stderr)
        return EXIT_FAILURES
    return 0


# --- commands ------------------------------------------------------------------------------------------------
def cmd_enhance(args: argparse.Namespace) -> int:
    from nightvision.stream.jobs import enhance_path
    from nightvision.stream.pipeline import stop_on_signals

    status = _Status(args.quiet, only_tty=True)
    with stop_on_signals() as stop:
        report = enhance_path(
            args.input,
            args.output,
            enhancer=_enhancer(args),
            crf=args.crf,
            overwrite=args.overwrite,
            skip_existing=args.skip_existing,
            stop=stop,
            on_progress=_progress(status),
            **_stages(args),
        )
    status.end()
    return _finish_job(report, args.output)


def cmd_demo(args: argparse.Namespace) -> int:
    from nightvision.demo import run_demo
    from nightvision.stream.pipeline import stop_on_signals

    status = _Status(args.quiet, only_tty=True)
    with stop_on_signals() as stop:
        result = run_demo(
            args.video,
            args.output,
            enhancer=_enhancer(args),
            overwrite=args.overwrite,
            stop=stop,
            on_progress=_progress(status),
            **_stages(args),
        )
    status.end()
    r = result.report
    if r.stopped_by:
        return _stopped(r.stopped_by, r.stopped_at, r.partial)
    print(f"input:         {result.source}")
    print(f"enhanced:      {result.enhanced}  ({r.frames} frames, {r.fps:.1f} FPS)")
    print(f"side by side:  {result.picture}")
    print(f"mean luma:     {r.luma_in:.1f} -> {r.luma_out:.1f} (of 255)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from nightvision.stream.jobs import run_stream
    from nightvision.stream.pipeline import stop_on_signals

    size = args.size
    if args.width or args.height:  # the old spelling, still accepted
        if not (args.width and args.height) or size:
            raise InputError("give the camera size once, as --size WIDTHxHEIGHT (e.g. --size 1280x720)")
        size = f"{args.width}x{args.height}"
    status = _Status(args.quiet)

    def on_status(stats: PipelineStats) -> None:
        status(stats.status_line())

    with stop_on_signals() as stop:
        stats = run_stream(
            args.source,
            args.output,
            enhancer=_enhancer(args),
            headless=args.headless,
            policy=args.policy,
            smooth=args.smooth,
            hud=args.hud,
            loop=args.loop,
            size=size,
            fps=args.fps or 0.0,
            retries=args.retries,
            crf=args.crf,
            overwrite=args.overwrite,
            stats_json=args.stats_json,
            stop=stop,
            on_status=on_status,
            **_stages(args),
        )
    status.end()
    s = stats.stage_ms
    print(
        f"{stats.frames_out} frames out of {stats.frames_in} in {stats.seconds:.1f} s ({stats.fps_out:.1f} FPS), "
        f"dropped {stats.dropped} ({stats.dropped_stale} stale, {stats.dropped_at_stop} at the stop); "
        f"latency p50 {stats.latency_ms.get('p50', 0):.1f} ms, p95 {stats.latency_ms.get('p95', 0):.1f} ms; "
        f"infer p50 {s.get('infer', {}).get('p50', 0):.1f} ms; stopped by {stats.stopped_by}"
    )
    if stats.stopped_by in EXIT_SIGNAL:
        partial = next((Path(o) for o in stats.outputs if ".partial." in Path(o).name), None)
        where = f"frame {stats.frames_out}" + (f" of {stats.frame_count}" if stats.frame_count else "")
        kept = f"; kept {partial} (playable)" if partial else ""
        print(f"nightvision: interrupted by {stats.stopped_by} at {where} of {stats.source}{kept}", file=sys.stderr)
        return EXIT_SIGNAL[stats.stopped_by]
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import socket

    from nightvision.evaluation.bench import (
        RESULT_FILES,
        bench_models,
        bench_pipeline,
        check_backend_names,
        save_results,
    )
    from nightvision.io.outputs import check_outputs

    out = Path(args.output or f"benchmarks/results/{socket.gethostname()}")
    check_outputs([], [out / name for name in RESULT_FILES], overwrite=args.overwrite)
    check_backend_names(args.backends.split(","))
    if args.pipeline:  # before the table, not after it
        from nightvision.io.video import is_video

        clip = Path(args.pipeline)
        if not clip.exists():
            raise InputError(f"no such video for --pipeline: {args.pipeline}")
        if clip.is_dir() or not is_video(clip):
            what = "a folder" if clip.is_dir() else "not one"
            raise InputError(f"--pipeline takes a video file, and {clip} is {what}")
    cells = bench_models(
        args.models.split(","),
        args.backends.split(","),
        args.sizes,
        seconds=args.seconds,
        warmup=args.warmup,
        threads=args.threads,
        reference=not args.no_reference,
        denoise=not args.no_denoise_rows,
    )
    pipeline = None
    if args.pipeline is not None:
        pipeline = bench_pipeline(args.pipeline or None, threads=args.threads)
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    paths = save_results(out, cells, settings, pipeline)
    print(paths[2].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    asked = [c for c in cells if c.model in args.models.split(",")]
    if pipeline is None and asked and not any(c.status == "ok" for c in asked):
        print("nightvision: no model could be measured here (every cell is unavailable or failed)", file=sys.stderr)
        return 1
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from nightvision.backends.tensorrt import Profile, ensure_plan
    from nightvision.cache import ENGINES, cache_dir
    from nightvision.io.sizes import parse_size
    from nightvision.specs import get_spec, sha256_of

    engines = Path(args.engines) if args.engines else cache_dir(ENGINES)
    source = None
    if args.model.endswith(".onnx"):
        onnx, model = Path(args.model), Path(args.model).stem
        if not onnx.is_file():
            raise InputError(f"no such ONNX graph: {onnx}")
    elif Path(args.model).is_file() or "/" in args.model:
        raise InputError(f"build takes a registered model name or an .onnx graph, got {args.model}")
    else:
        spec = get_spec(args.model)
        if spec.onnx_path is None or not spec.has_onnx:
            raise InputError(f"model {args.model!r} ships no ONNX graph: export a trained one, build from the .onnx")
        onnx, model = spec.onnx_path, spec.name
        source = sha256_of(onnx)
        if args.precision == "fp16":  # strongly typed: the graph decides, so build from the fp16 graph
            from nightvision.export import convert_to_fp16

            onnx = convert_to_fp16(onnx, engines / f"{model}-fp16.onnx")
    profile = Profile(parse_size(args.min), parse_size(args.opt), parse_size(args.max))
    plan = ensure_plan(
        onnx,
        engines,
        model=model,
        precision=args.precision,
        profile=profile,
        version_compatible=args.version_compatible,
        workspace_gib=args.workspace,
        source_sha256=source,
    )
    print(plan)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from nightvision.specs import list_specs, measured_scores

    scores = measured_scores()

    def fig(name: str, key: str, fmt: str) -> str:
        value = scores.get(name, {}).get(key)
        if value is not None and key == "fps_720p" and value < 0.1:
            fmt = ".3f"  # (a minute a frame is not 0.0 FPS)
        return "–" if value is None else format(value, fmt)

    print(
        f"{'model':<17}{'weights':<10}{'SICE dB':>8}{'SSIM':>7}{'video dB':>10}{'+3dnr':>7}{'noise':>7}{'FPS 720p':>10}"
    )
    for spec in list_specs():
        ready = "onnx" if spec.has_onnx else "missing" if spec.onnx else "train it"
        name = spec.name + (" *" if spec.name == DEFAULT_MODEL else "")
        print(
            f"{name:<17}{ready:<10}{fig(spec.name, 'sice_psnr', '.2f'):>8}{fig(spec.name, 'sice_ssim', '.3f'):>7}"
            f"{fig(spec.name, 'video_psnr', '.2f'):>10}{fig(spec.name, 'video_psnr_denoise', '.2f'):>7}"
            f"{fig(spec.name, 'phone_noise_ratio', '.2f'):>7}{fig(spec.name, 'fps_720p', '.1f'):>10}"
        )
    note = (
        "* the default. Measured (benchmarks/scorecard.py): SICE dB/SSIM on the 40 test pairs (nightvision eval "
        "--brackets); video dB on noisy, moving synthetic clips, alone and after --denoise (nightvision eval "
        "--video); noise: noise ratio on a real night phone clip (below 1 removes noise; lower is cleaner); FPS "
        "of the model at 720p with ONNX Runtime on a 2-core CPU; –: not measured."
    )
    print("\n" + textwrap.fill(note, 110) + "\n")
    for spec in list_specs():
        print(f"{spec.name:<15}{spec.family:<12}{spec.summary}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nightvision.io.outputs import check_outputs

    if args.format == "triton":
        from nightvision.triton import write_triton_repository

        if args.weights or args.downscale:
            raise InputError(
                "--weights and --downscale shape an exported graph: export it first (`nightvision export MODEL "
                "--weights CKPT -o mine.onnx`), then serve that graph with --format triton --onnx mine.onnx"
            )
        if args.fp16 and not args.trt_accelerator:
            raise InputError(
                "--fp16 with --format triton sets TensorRT's precision (with --trt-accelerator); to serve an fp16 "
                "graph, export it with --fp16 and pass it with --onnx"
            )

        options = (("kind", args.triton_kind), ("instances", args.instances), ("max_batch_size", args.max_batch))
        repo = write_triton_repository(
            args.model,
            args.output,
            onnx=args.onnx,
            plan=args.plan,
            **{k: v for k, v in options if v is not None},  # (left out: write_triton_repository's defaults)
            tensorrt_accelerator=args.trt_accelerator,
            fp16=args.fp16,
            overwrite=args.overwrite,
        )
        print(f"wrote the Triton model repository {repo.root}: " + ", ".join(p.name for p in repo.models))
        return 0
    from nightvision.export import convert_to_fp16, export_onnx, record_in_manifest

    triton_only = ("onnx", "plan", "trt_accelerator", "triton_kind", "instances", "max_batch")
    given = [f"--{k.replace('_', '-')}" for k in triton_only if getattr(args, k) not in (None, False)]
    if given:
        verb = "goes" if len(given) == 1 else "go"
        raise InputError(f"{', '.join(given)} {verb} with --format triton; add it, or leave out {', '.join(given)}")
    check_outputs([args.weights] if args.weights else [], [args.output], overwrite=args.overwrite)
    kwargs = {"downscale": args.downscale} if args.downscale else {}
    path = export_onnx(args.model, args.output, weights=args.weights, opset=args.opset, **kwargs)
    if args.fp16:
        path = convert_to_fp16(path, path)
    manifest = record_in_manifest(path)
    print(f"wrote {path} (recorded in {manifest})")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from nightvision.cluster.batch import batch
    from nightvision.stream.pipeline import stop_on_signals

    with stop_on_signals() as stop, stop.listening():
        report = batch(
            args.inputs,
            args.output,
            address=args.address,
            use_ray=False if args.in_process else None,
            model=args.model,
            backend=args.backend,
            denoise=args.denoise,
            exposure=args.exposure,
            crf=args.crf,
            cpus_per_task=args.cpus_per_task,
            gpus_per_task=args.gpus_per_task,
            workers=args.workers,
            chunk_seconds=args.chunk_seconds,
            retries=args.task_retries,
            overwrite=args.overwrite,
            progress=not args.quiet,
            stop=stop,
            report_path=args.report,
        )
    print(report.table())
    if report.stopped_by in EXIT_SIGNAL:
        print(f"nightvision: batch stopped by {report.stopped_by}; run it again to resume", file=sys.stderr)
        return EXIT_SIGNAL[report.stopped_by]
    failed = report.count("failed")
    if failed:
        print(f"nightvision: error: {failed} of {len(report.files)} inputs failed", file=sys.stderr)
        return EXIT_FAILURES
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from nightvision.cluster.serve import serve, status_line
    from nightvision.stream.pipeline import stop_on_signals

    status = _Status(args.quiet)

    def ready(url: str) -> None:
        print(f"nightvision: serving on {url} (Ctrl-C stops)", file=sys.stderr)

    with stop_on_signals() as stop:
        report = serve(
            args.config,
            address=args.address,
            host=args.host,
            port=args.port,
            in_process=args.in_process,
            stop=stop,
            on_ready=ready,
            on_status=lambda views: status(status_line(views)),
        )
    status.end()
    for v in report.cameras:
        why = f" ({v.reason})" if v.reason else ""
        print(f"{v.name}: {v.frames_out} frames out, {v.restarts} restarts, {v.state}{why}")
    if report.stopped_by in EXIT_SIGNAL:
        print(f"nightvision: stopped by {report.stopped_by} after {report.seconds:.0f} s", file=sys.stderr)
        return EXIT_SIGNAL[report.stopped_by]
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    import json

    from nightvision.doctor import diagnose, format_report

    report = diagnose()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


EVAL_FILES = ("per_image.csv", "summary.md", "summary.json", "grid.png")


VIDEO_EVAL_FILES = ("video.md", "video.json", "contact-sheet.jpg")


def cmd_eval(args: argparse.Namespace) -> int:
    from nightvision.evaluation.evaluate import (
        check_readable,
        classical_methods,
        evaluate,
        find_inputs,
        our_methods,
        reference_methods,
    )
    from nightvision.io.outputs import check_outputs
    from nightvision.specs import get_spec, list_specs

    files = VIDEO_EVAL_FILES if args.video else EVAL_FILES
    check_outputs([], [Path(args.output) / name for name in files], overwrite=args.overwrite)
    names = args.models.split(",") if args.models else [s.name for s in list_specs() if s.has_onnx]
    for name in names:
        if not get_spec(name).has_onnx:
            raise InputError(f"model {name!r} ships no ONNX graph to evaluate (shipped: see nightvision models)")
    if args.video:
        return _eval_video(args, names)
    if args.clips:
        raise InputError("--clips goes with --video (the real clips of the video benchmark)")
    inputs, targets = find_inputs(args.data, brackets=args.brackets, output=args.output)
    if args.limit:
        inputs, targets = inputs[: args.limit], (targets[: args.limit] if targets else None)
    check_readable(inputs)  # before the models load (a minute for all of them)
    methods = classical_methods() + our_methods(names, threads=args.threads)
    if args.references:
        methods += reference_methods(args.references)
    kind = "pairs" if targets else "unpaired images"
    print(f"scoring {len(methods)} methods on {len(inputs)} {kind} from {args.data}", file=sys.stderr)
    result = evaluate(methods, inputs, targets, args.output)
    print(result.markdown(), end="")
    print("wrote " + ", ".join(str(p) for p in result.paths))
    for _, why in result.skipped:
        print(f"nightvision: left out: {why}", file=sys.stderr)
    if result.skipped:
        print(f"nightvision: {len(result.skipped)} of {len(inputs)} images could not be read", file=sys.stderr)
        return 1
    return 0


def _eval_video(args: argparse.Namespace, names: list[str]) -> int:
    from nightvision.evaluation.video import evaluate_video

    for clip in args.clips:
        if Path(clip).is_dir():
            raise InputError(f"--clips takes video files, and {clip} is a folder (e.g. --clips {clip}/*.mp4)")
        if not Path(clip).is_file():
            raise InputError(f"no such clip: {clip}")
    print(f"building the synthetic video set from the test scenes of {args.data}", file=sys.stderr)
    result = evaluate_video(
        args.data,
        args.output,
        videos=args.clips,
        references=args.references,
        models=names,
        peers=not args.no_peers,
        fps=not args.no_fps,
        frames=args.frames,
        real_frames=args.frames,
    )
    print(result.markdown(), end="")
    print("wrote " + ", ".join(str(p) for p in result.paths))
    return 0


def _recipe_model(rest: list[str]) -> str:
    """The model a training command line names (``--model`` wins over the recipe's ``model``)."""
    from nightvision.training.config import tomllib  # tomllib, or tomli on Python 3.10

    model = DEFAULT_MODEL
    for i, arg in enumerate(rest):
        key, eq, value = arg.partition("=")
        value = value if eq else (rest[i + 1] if i + 1 < len(rest) else "")
        if key == "--config" and Path(value).is_file():
            try:
                with open(value, "rb") as f:
                    model = tomllib.load(f).get("model", model)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
                raise InputError(f"cannot read the recipe {value}: {err}") from None
            if not isinstance(model, str):
                raise InputError(f"recipe {value}: model must be a model name such as {DEFAULT_MODEL!r}, got {model!r}")
    for i, arg in enumerate(rest):
        key, eq, value = arg.partition("=")
        if key == "--model":
            model = value if eq else (rest[i + 1] if i + 1 < len(rest) else model)
    return model


def cmd_train(args: argparse.Namespace) -> int:
    import importlib

    from nightvision.training.config import help_text, trainer_for

    names_model = any(a.split("=")[0] in ("--config", "--model") for a in args.rest)
    if any(a in ("-h", "--help") for a in args.rest):  # torch-free: the recipe keys of one or every trainer
        print(help_text(_recipe_model(args.rest) if names_model else None), end="")
        return 0
    trainer = trainer_for(_recipe_model(args.rest))
    try:
        train_main = importlib.import_module(trainer.module).main
    except ImportError as err:
        raise NightvisionError(f"training needs torch: pip install -e '.[train]' ({err})") from err
    train_main(args.rest)
    return 0


# --- the parser ----------------------------------------------------------------------------------------------
def build_parser() -> _Parser:
    from nightvision import __version__

    m = DEFAULT_MODEL
    parser = _Parser(
        prog="nightvision",
        description="Real-time low-light video enhancement.",
        formatter_class=_Formatter,
        epilog=_examples(
            "nightvision enhance dark.mp4 -o bright.mp4",
            "nightvision run 0 --hud",
            "nightvision COMMAND --help      (every command lists its options and examples)",
        ),
    )
    parser.add_argument("--version", action="version", version=f"nightvision {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v: info logging, -vv: debug")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str, examples: Sequence[str], **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=description,
            epilog=_examples(*examples),
            formatter_class=_Formatter,
            **kw,
        )
        # -v also after the command (`nightvision run 0 -v`); SUPPRESS keeps a -v given before it
        p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="-v: info, -vv: debug")
        return p

    p = command(
        "enhance",
        "enhance an image, a video or a folder of them (lossless, audio kept)",
        "Enhance an image, a video or a folder (recursively) into new files. Videos keep their size, frame "
        "count, timestamps and audio; images keep grey, alpha and 16 bits where the output format holds them "
        "(16-bit to JPEG is scaled to 8 bits). Inputs are never overwritten; existing outputs only with "
        "--overwrite. A folder job goes on past a file that fails, lists every failure and exits with 1.\n\n"
        "Ctrl-C (exit 130) or SIGTERM (exit 143) stops within about a second: finished files stay, the video "
        "in progress is kept, playable, as NAME.partial.mp4 (an image in progress is left out), and the "
        "command says where it stopped.",
        [
            "nightvision enhance dark.mp4 -o bright.mp4",
            "nightvision enhance photo.png -o photo-bright.jpg",
            "nightvision enhance photos/ -o bright-photos/",
            "nightvision enhance night.mp4 -o clean.mp4 --model nafnet-s --overwrite",
        ],
    )
    p.add_argument("input", help="image, video (mp4/mkv/avi/mov/m4v/webm) or folder (recursive)")
    p.add_argument("-o", "--output", required=True, help="output file, or folder for a folder input")
    _add_crf(p)
    _add_overwrite(p)
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="keep outputs that exist and enhance the rest (resumes an interrupted folder job)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    _add_model_args(p)
    _add_picture_args(p)
    p.set_defaults(func=cmd_enhance)

    p = command(
        "demo",
        "enhance a clip (or a synthetic one) and save a side-by-side picture",
        "Enhance VIDEO (default: a synthetic dark street, made on the spot) into OUTPUT/enhanced.mp4 and save "
        "OUTPUT/side-by-side.png from its middle frame.",
        ["nightvision demo", "nightvision demo night.mp4 -o demo-night --overwrite"],
    )
    p.add_argument("video", nargs="?", help="a low-light video (default: a synthetic dark clip)")
    p.add_argument("-o", "--output", default="demo", help="output folder")
    _add_overwrite(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    _add_model_args(p)
    _add_picture_args(p)
    p.set_defaults(func=cmd_demo)

    p = command(
        "run",
        "enhance a live camera, stream or file in real time (window, MJPEG, files)",
        "Enhance a camera, network stream, file or folder of images into one or more outputs. Live sources "
        "keep only the newest frame (latency stays low; stale frames are dropped and counted); files run "
        "lossless, in order, audio kept. The status line shows the current FPS and says when a stream is "
        "down (a stream that delivered frames is reconnected forever, backoff up to 8 s; one that never "
        "opened fails after --retries tries).\n\n"
        "Ctrl-C (exit 130) or SIGTERM (exit 143) stops within about a second. A file output of a finite input "
        "stopped early is kept, playable, as NAME.partial.mp4; for a live source the recording up to the stop "
        "is the output. q in the window stops and exits 0.",
        [
            "nightvision run 0 --hud",
            "nightvision run rtsp://user:pass@cam/stream --headless -o http://127.0.0.1:8090/ -o night.mp4",
            "nightvision run clip.mp4 --headless -o out.mp4 --stats-json stats.json",
            "nightvision run /dev/video0 --size 1280x720 --fps 30",
            "nightvision run 'synthetic://?fps=30&size=1280x720' --headless",
            "nightvision run rtsp://user:pass@cam/stream --headless --denoise -o rtsp://0.0.0.0:8554/night",
        ],
    )
    p.add_argument("source", help="camera (0, /dev/video0), file, folder, rtsp://, http://, gst://, synthetic://")
    p.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        help="repeatable: out.mp4, frames/, http://127.0.0.1:8090/, rtsp://127.0.0.1:8554/night, display://, "
        "null:// (default: a window; "
        "null:// with --headless)",
    )
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--policy", choices=["latest", "lossless"], help="default: latest for live sources, else lossless")
    p.add_argument(
        "--smooth",
        action="store_true",
        help="smooth the curve map over time (off by default: measured to add pumping on real clips)",
    )
    p.add_argument("--hud", action="store_true", help="draw the current FPS and latency on the output")
    p.add_argument("--stats-json", metavar="FILE", help="write the final summary to this JSON file")
    p.add_argument(
        "--loop", type=_int_in(-1, 1_000_000), default=0, help="files and folders: extra passes (-1: forever)"
    )
    p.add_argument(
        "--size", type=_size, metavar="WxH", help="camera: requested size, WIDTHxHEIGHT or 480p/720p/1080p/4k"
    )
    p.add_argument("--fps", type=_float_in(0, 1000), help="camera: requested frame rate")
    p.add_argument(
        "--retries",
        type=_int_in(1, 1000),
        metavar="N",
        help="network streams: tries to open a stream before giving up, 3 by default (one that delivered frames "
        "is reconnected forever)",
    )
    p.add_argument("--width", type=_int_in(1, 65536), help=argparse.SUPPRESS)  # old spelling of --size
    p.add_argument("--height", type=_int_in(1, 65536), help=argparse.SUPPRESS)
    _add_crf(p)
    _add_overwrite(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    _add_model_args(p)
    _add_picture_args(p)
    p.set_defaults(func=cmd_run)

    p = command(
        "bench",
        "measure latency and FPS per model, backend and size (and the pipeline)",
        "Measure model latency (p50/p95/p99) and FPS for every model x backend x size, with an eager-PyTorch "
        "reference row and CLAHE as the classical floor; --pipeline also measures the whole file and live "
        "path. Results (JSON, CSV, markdown, a chart) carry the versions, hardware and settings.",
        [
            "nightvision bench",
            "nightvision bench --pipeline --overwrite",
            "nightvision bench --models nafnet-s --backends torch,torch:fp16+graphs --sizes 720p,1920x1080 -o gpu/",
        ],
    )
    p.add_argument("--models", "-m", default=f"{m},zero-dce++,zero-dce", help="comma-separated models")
    p.add_argument(
        "--backends",
        default="onnxruntime",
        help="comma-separated: onnxruntime, torch, tensorrt; GPU: torch:fp16, torch:fp16+graphs, torch:fp16+cl+graphs",
    )
    p.add_argument(
        "--sizes", type=_sizes, default="480p,720p,1080p", help="comma-separated: 480p/720p/1080p/4k or WIDTHxHEIGHT"
    )
    p.add_argument("--seconds", type=_float_in(0, 3600), default=2.0, help="measuring time per cell")
    p.add_argument("--warmup", type=_int_in(0, 1000), default=3, help="warm-up calls per cell")
    p.add_argument("--threads", type=THREADS, default=0, help="ONNX Runtime threads (0: one per core)")
    p.add_argument("--no-reference", action="store_true", help="skip the eager-PyTorch reference rows")
    p.add_argument("--no-denoise-rows", action="store_true", help="skip the temporal denoiser's rows (its cost)")
    # (the old name; elsewhere --no-denoise turns the denoiser off, here it only skipped its rows)
    p.add_argument("--no-denoise", dest="no_denoise_rows", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--pipeline",
        nargs="?",
        const="",
        default=None,
        metavar="VIDEO",
        help="also benchmark the pipeline on VIDEO (no value: a synthetic 1280x720 clip)",
    )
    p.add_argument("-o", "--output", help="output folder (default: benchmarks/results/HOSTNAME)")
    p.add_argument("--out", dest="output", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the old name
    _add_overwrite(p)
    p.set_defaults(func=cmd_bench)

    p = command(
        "build",
        "build (or reuse) a TensorRT plan for a model or ONNX file",
        "Build a TensorRT plan for the sizes given (or reuse the cached one built from the same graph, "
        "settings, TensorRT and GPU). Needs TensorRT and a CUDA GPU.",
        [
            f"nightvision build {m}",
            f"nightvision build {m} --precision fp16 --opt 1280x720 --max 1920x1080",
            "nightvision build engines/mine.onnx --max 4k",
        ],
    )
    p.add_argument("model", help="registered model or an .onnx file")
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16"],
        default="fp32",
        help="fp16 builds from an fp16 copy of the graph (for an .onnx argument: a label; the graph decides)",
    )
    p.add_argument("--min", type=_size, default="64x64", help="smallest input, WIDTHxHEIGHT or 720p")
    p.add_argument("--opt", type=_size, default="720p", help="input size to optimise for, WIDTHxHEIGHT or 720p")
    p.add_argument("--max", type=_size, default="1080p", help="largest input, WIDTHxHEIGHT or 1080p")
    p.add_argument("--workspace", type=_float_in(0, 1024), default=2.0, help="builder workspace in GiB")
    p.add_argument("--version-compatible", action="store_true", help="plan that runs on later TensorRT versions")
    p.add_argument(
        "--engines",
        metavar="DIR",
        default=None,
        help="plan folder (default: the user cache, $NIGHTVISION_CACHE or ~/.cache/nightvision/engines, "
        "where --backend auto looks)",
    )
    p.set_defaults(func=cmd_build)

    p = command(
        "eval",
        "score models, classical baselines and reference models on a folder",
        "Score the shipped models (and CLAHE, gamma, and the official weights with --references) on paired "
        "data (PSNR, SSIM) or unpaired images (no-reference figures); writes per_image.csv, summary.md, "
        "summary.json and grid.png. With --video: the paired video benchmark, clips made dark, noisy and moving "
        "from the test scenes of exposure brackets (cached), every model with and without --denoise and the "
        "ffmpeg/OpenCV denoisers, PSNR/SSIM, temporal consistency, the moving region, FPS at 720p, and noise "
        "ratio/flicker on real --clips; writes video.md, video.json and contact-sheet.jpg.",
        [
            "nightvision eval --data ../shared/data/lol",
            "nightvision eval --data ../shared/data/sice --brackets --references ../shared/reference-weights",
            f"nightvision eval --data photos/ --models {m} -o eval-photos --overwrite",
            "nightvision eval --video --data ../shared/data/sice --clips ../shared/videos/*.mp4 -o eval-video",
        ],
    )
    p.add_argument("--data", required=True, help="LOL-style folder (low/, high/), brackets (--brackets) or images")
    p.add_argument("--models", "-m", help="comma-separated shipped models (default: all of them)")
    p.add_argument("--brackets", action="store_true", help="DATA is exposure brackets: score their test split")
    p.add_argument("--references", help="folder of the official weights (zero-dce/, zero-dce-pp/, sci/); needs torch")
    p.add_argument("-o", "--output", default="eval-results", help="folder for per_image.csv, summary.md/json, grid.png")
    p.add_argument("--out", dest="output", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the old name
    p.add_argument("--limit", type=_int_in(0, 10**9), default=0, help="score only the first N images (0: all)")
    p.add_argument("--threads", type=THREADS, default=0, help="ONNX Runtime threads (0: one per core)")
    p.add_argument("--video", action="store_true", help="the paired video benchmark (DATA: exposure brackets)")
    p.add_argument("--clips", nargs="*", default=[], metavar="CLIP", help="--video: real clips for noise and flicker")
    p.add_argument("--frames", type=_int_in(2, 10_000), default=32, help="--video: frames per clip")
    p.add_argument("--no-peers", action="store_true", help="--video: leave out the ffmpeg/OpenCV denoisers")
    p.add_argument("--no-fps", action="store_true", help="--video: skip the 720p timing")
    _add_overwrite(p)
    p.set_defaults(func=cmd_eval)

    p = command(
        "models",
        "list the registered models",
        "List the registered models: family, whether an ONNX graph ships, and what each is for.",
        ["nightvision models"],
    )
    p.set_defaults(func=cmd_models)

    p = command(
        "doctor",
        "print what a bug report needs and what will be used here",
        "Print versions (Python, numpy, OpenCV with its FFmpeg/GStreamer/CUDA, PyAV codecs, ONNX Runtime "
        "providers, torch and CUDA, TensorRT, pycuda, Ray), GPUs, cameras, the backend `auto` would pick and "
        "why, and the cache folders. Paste it into bug reports.",
        ["nightvision doctor", "nightvision doctor --json > doctor.json"],
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)

    p = command(
        "batch",
        "enhance archives of videos and images, spread over a Ray cluster, resumable",
        "Enhance files, folders and globs into OUTDIR (relative paths kept) with the model loaded once per "
        "worker; videos longer than --chunk-seconds are split at keyframes, processed in parallel (temporal "
        "stages warm up on the frames before each chunk) and joined into one output with the same frames, "
        "timestamps and audio as `nightvision enhance`. A manifest in OUTDIR records finished outputs: a rerun "
        "skips them and redoes the rest. Bad files are reported and skipped (exit 1); a lost worker's tasks are "
        "retried elsewhere. Without --address: a local Ray instance when Ray is installed, else in-process.",
        [
            "nightvision batch recordings/ -o enhanced/",
            "nightvision batch 'cams/**/*.mp4' -o out/ --address auto --gpus-per-task 0.25",
            "nightvision batch a.mp4 b.mp4 -o out/ --address ray://head:10001 --denoise --report report.json",
        ],
    )
    p.add_argument("inputs", nargs="+", help="files, folders and globs of videos and images")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: local)")
    p.add_argument("--in-process", action="store_true", help="no Ray, even when it is installed")
    p.add_argument("--cpus-per-task", type=_float_in(0.01, 256), default=1.0, help="CPUs per worker")
    p.add_argument("--gpus-per-task", type=_float_in(0, 16), default=0.0, help="GPUs per worker (0.25: four per GPU)")
    p.add_argument("--workers", type=_int_in(1, 100_000), help="workers (default: as many as fit the cluster)")
    p.add_argument(
        "--chunk-seconds",
        type=_float_in(0, 1e6, zero=True),
        default=60.0,
        help="split longer videos at keyframes (0: never)",
    )
    p.add_argument(
        "--task-retries", type=_int_in(0, 100), default=2, help="reruns of a task whose worker was lost"
    )  # (not --retries: in `run` that counts tries to open a stream)
    p.add_argument("--retries", dest="task_retries", type=_int_in(0, 100), help=argparse.SUPPRESS)  # the old name
    _add_crf(p)
    p.add_argument(
        "--report", metavar="FILE", help="write the JSON report here (default: OUTDIR/nightvision-batch-report.json)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_overwrite(p)
    p.add_argument("--model", "-m", default=DEFAULT_MODEL, help="registered model (see `nightvision models`)")
    p.add_argument(
        "--backend", "-b", default="auto", choices=["auto", "tensorrt", "onnxruntime", "torch"], help="inference"
    )
    _add_picture_args(p)
    p.set_defaults(func=cmd_batch)

    p = command(
        "serve",
        "serve many cameras live: one pipeline per camera on a Ray cluster, one HTTP port",
        "Run every camera of CONFIG (TOML or YAML: see examples/serve.toml) in its own pipeline actor on a Ray "
        "cluster (a local Ray instance without --address; threads with --in-process or without Ray), restart a "
        "camera that fails or stalls with backoff without touching the others, and serve on one port: an index "
        "page, /cam/NAME/stream.mjpg and /snapshot.jpg, /health (200 when every camera is up, else 503) and "
        "/metrics (Prometheus). Ctrl-C (exit 130) or SIGTERM (exit 143) stops every camera, finalising recordings.",
        [
            "nightvision serve examples/serve.toml",
            "nightvision serve site.toml --address auto --host 0.0.0.0 --port 9000",
            "nightvision serve cams.yaml --in-process",
        ],
    )
    p.add_argument("config", help="TOML (or YAML) file listing the cameras")
    p.add_argument(
        "--address", help="Ray cluster: auto, HOST:PORT or ray://HOST:PORT (default: the config's, else local Ray)"
    )
    p.add_argument("--host", help="address to serve on (default: the config's, else 127.0.0.1, this machine only)")
    p.add_argument(
        "--port", type=_int_in(0, 65535), help="HTTP port (default: the config's, else 8080; 0: any free port)"
    )
    p.add_argument("--in-process", action="store_true", help="run the cameras in threads of this process")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    p.set_defaults(func=cmd_serve)

    p = command(
        "export",
        "export a model to ONNX (needs the train extra)",
        "Export a model (the shipped weights or a checkpoint) to ONNX and record it in engines/manifest.json; "
        "or, with --format triton, write a Triton Inference Server model repository (torch-free).",
        [
            f"nightvision export {m} -o engines/{m}.onnx",
            f"nightvision export {m} --fp16 -o engines/{m}-fp16.onnx",
            f"nightvision export {m} --weights runs/{m}/final.pt -o engines/mine.onnx",
            f"nightvision export {m} --format triton -o triton-models/",
            f"nightvision export {m} --format triton --plan ~/.cache/nightvision/engines/PLAN.plan -o repo/",
        ],
    )
    p.add_argument("model", help="registered model")
    p.add_argument("-o", "--output", required=True, help="destination .onnx file (triton: the repository folder)")
    p.add_argument(
        "--format",
        choices=["onnx", "triton"],
        default="onnx",
        help="onnx: one graph; triton: a Triton model repository (config.pbtxt with dynamic H and W)",
    )
    t = p.add_argument_group("triton")
    t.add_argument("--onnx", metavar="FILE", help="serve this graph instead of the shipped one")
    t.add_argument("--plan", metavar="FILE", help="also a tensorrt_plan model from this plan (built on the server)")
    t.add_argument("--triton-kind", choices=["gpu", "cpu"], help="instance kind (default gpu)")
    t.add_argument("--instances", type=_int_in(1, 64), help="model instances per device (default 1)")
    t.add_argument("--max-batch", type=_int_in(0, 256), help="Triton's max_batch_size (0: none; default 4)")
    t.add_argument("--trt-accelerator", action="store_true", help="ONNX Runtime model: TensorRT acceleration")
    p.add_argument("--weights", help="checkpoint to export instead of the shipped weights")
    p.add_argument("--opset", type=_int_in(17, 30), default=18, help="ONNX opset")
    p.add_argument("--downscale", type=_int_in(1, 64), metavar="N", help="zero-dce++: curve-estimation downscale")
    p.add_argument("--fp16", action="store_true", help="fp16 weights and activations; fp32 I/O and normalisation")
    _add_overwrite(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "train", help="train a model: curve models unpaired, restoration models on pairs (train extra)", add_help=False
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--config FILE.toml and --key value overrides")
    p.set_defaults(func=cmd_train)
    parser.commands = dict(sub.choices)
    return parser


def _configure_logging(verbose: int) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's own progress chatter
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # OpenCV's and FFmpeg's own messages ("[ WARN:0@0.03] ...", "moov atom not found") would land around our
    # one-line errors; they stay quiet unless asked for with -vv.
    import cv2

    cv_levels = cv2.utils.logging
    cv_levels.setLogLevel(cv_levels.LOG_LEVEL_INFO if verbose > 1 else cv_levels.LOG_LEVEL_SILENT)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "32" if verbose > 1 else "-8")  # AV_LOG_INFO / AV_LOG_QUIET
    if verbose > 1:
        import av.logging

        av.logging.set_level(av.logging.INFO)  # through Python logging (logger "libav")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if "train" in argv and all(a.startswith("-") for a in argv[: argv.index("train")]):
        # `train` hands everything after it to the trainer's own parser (argparse's REMAINDER would refuse a
        # leading --option)
        cut = argv.index("train")
        args = parser.parse_args([*argv[:cut], "train"])
        args.rest = argv[cut + 1 :]
    else:
        args, extras = parser.parse_known_args(argv)
        if extras:
            command = parser.commands.get(getattr(args, "command", ""), parser)
            (command if isinstance(command, _Parser) else parser).unrecognized(extras)
    _configure_logging(args.verbose)
    keep_freed_memory()  # frame-sized temporaries reuse their pages instead of faulting them in afresh
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt as err:  # a second Ctrl-C / SIGTERM, or one outside a job
        name = getattr(err, "signal", "SIGINT")
        print(f"nightvision: interrupted by {name}", file=sys.stderr)
        code = EXIT_SIGNAL.get(name, 130)
        _leave_if_ffmpeg_is_blocked(code)
        return code
    except BrokenPipeError:  # `nightvision models | head`: the reader has gone; nothing to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except (NightvisionError, OSError) as err:
        if args.verbose > 1:
            log.exception("failed")
        print(f"nightvision: error: {_in_words(err)}", file=sys.stderr)
        return EXIT_ERROR


def _leave_if_ffmpeg_is_blocked(code: int) -> None:
    """Exit at once with ``code`` when a stream's connection attempt is still blocked in FFmpeg (the daemon thread
    that a Ctrl-C while connecting leaves behind, :meth:`StreamSource._connect_interruptibly`): when FFmpeg
    returns into an interpreter that is shutting down, the process can crash (seen once in the test suite: SIGSEGV
    after the "interrupted" line). Everything of the job has been closed by now; only stdio is flushed."""
    from nightvision.stream.sources import connection_pending

    if connection_pending():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _in_words(err: BaseException) -> str:
    """An error for the user: our own as they are; an OS error as its file and its cause in words, without the
    ``[Errno N]`` of Python's."""
    if isinstance(err, OSError) and not isinstance(err, NightvisionError) and err.errno is not None:
        from nightvision.io.atomic import describe_os_error

        name = f"{err.filename}: " if err.filename else ""
        return f"{name}{describe_os_error(err)}"
    return str(err)


if __name__ == "__main__":
    sys.exit(main())
