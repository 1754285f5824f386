"""The ``nightvision`` command: a thin layer over the API. Each sub-command parses and calls one function.

Only this module configures logging and prints. Errors the user can fix end in one line on stderr and exit
code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightvision.errors import InputError, NightvisionError

if TYPE_CHECKING:
    from nightvision.enhancer import Enhancer

__all__ = ["main"]

log = logging.getLogger("nightvision")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", default="zero-dce++", help="registered model (see `nightvision models`)")
    p.add_argument(
        "--backend",
        "-b",
        default="auto",
        choices=["auto", "tensorrt", "onnxruntime", "torch"],
        help="auto (default): TensorRT with a built plan, else PyTorch on a CUDA GPU, else ONNX Runtime",
    )
    p.add_argument("--onnx", help="run this ONNX file instead of the shipped one (onnxruntime)")
    p.add_argument("--weights", help="run this checkpoint instead of the shipped weights (torch)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (torch backend)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: one per core)")
    p.add_argument(
        "--downscale", type=int, help="zero-dce++: estimate the curve at 1/N size (default: a ~96-px copy at any size)"
    )
    p.add_argument("--exact", action="store_true", help="run the full ONNX graph instead of the fast curve lookup")


def _enhancer(args: argparse.Namespace) -> Enhancer:
    from nightvision.enhancer import Enhancer

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


def cmd_enhance(args: argparse.Namespace) -> int:
    from nightvision.enhance import enhance_path

    if not Path(args.input).exists():  # before loading a model
        raise InputError(f"no such file or folder: {args.input}")
    report = enhance_path(args.input, args.output, enhancer=_enhancer(args), progress=not args.quiet, crf=args.crf)
    print(
        f"enhanced {report.files} file(s), {report.frames} frame(s) in {report.seconds:.1f} s "
        f"({report.fps:.1f} FPS); mean luma {report.luma_in:.1f} -> {report.luma_out:.1f} -> {args.output}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from nightvision.demo import run_demo

    result = run_demo(args.video, args.output, enhancer=_enhancer(args), progress=not args.quiet)
    r = result.report
    print(f"input:         {result.source}")
    print(f"enhanced:      {result.enhanced}  ({r.frames} frames, {r.fps:.1f} FPS)")
    print(f"side by side:  {result.picture}")
    print(f"mean luma:     {r.luma_in:.1f} -> {r.luma_out:.1f} (of 255)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from nightvision.stream.pipeline import Pipeline, write_stats
    from nightvision.stream.sinks import open_sink
    from nightvision.stream.sources import open_source

    outputs = list(args.output) or (["null://"] if args.headless else ["display://"])
    if args.headless and "display://" in outputs:
        raise InputError("--headless and a display:// output contradict each other")
    enhancer = _enhancer(args)
    source = open_source(args.source, loop=args.loop, width=args.width, height=args.height, fps=args.fps)
    sinks = []
    try:
        for uri in outputs:
            sinks.append(open_sink(uri, fps=source.fps or 30.0, time_base=source.time_base))
        tty = sys.stderr.isatty()

        def status(stats: Any) -> None:
            if not args.quiet:
                print(("\r" if tty else "") + stats.status_line(), end="" if tty else "\n", file=sys.stderr, flush=True)

        pipeline = Pipeline(
            source, enhancer, sinks, policy=args.policy, smooth=args.smooth, hud=args.hud, on_status=status
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda signum, frame: pipeline.stop(signal.Signals(signum).name))
        stats = pipeline.run()
    finally:
        source.close()
        for sink in sinks:
            sink.close()
    if tty and not args.quiet:
        print(file=sys.stderr)
    if args.stats_json:
        write_stats(args.stats_json, stats)
    s = stats.stage_ms
    print(
        f"{stats.frames_out} frames out of {stats.frames_in} in {stats.seconds:.1f} s ({stats.fps_out:.1f} FPS), "
        f"dropped {stats.dropped}; latency p50 {stats.latency_ms.get('p50', 0):.1f} ms, "
        f"p95 {stats.latency_ms.get('p95', 0):.1f} ms; infer p50 {s.get('infer', {}).get('p50', 0):.1f} ms; "
        f"stopped by {stats.stopped_by}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import socket

    from nightvision.evaluation.bench import bench_models, bench_pipeline, save_results

    backends = args.backends.split(",")
    cells = bench_models(
        args.models.split(","),
        backends,
        args.sizes.split(","),
        seconds=args.seconds,
        warmup=args.warmup,
        threads=args.threads,
        reference=not args.no_reference,
    )
    pipeline = None
    if args.pipeline is not None:
        pipeline = bench_pipeline(args.pipeline or None, threads=args.threads)
    out = args.out or f"benchmarks/results/{socket.gethostname()}"
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    paths = save_results(out, cells, settings, pipeline)
    print(paths[2].read_text())
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from nightvision.backends.tensorrt import Profile, ensure_plan
    from nightvision.specs import get_spec, sha256_of

    source = None
    if args.model.endswith(".onnx"):
        onnx, model = Path(args.model), Path(args.model).stem
    else:
        spec = get_spec(args.model)
        if spec.onnx_path is None or not spec.has_onnx:
            raise InputError(f"model {args.model!r} has no shipped ONNX graph; export one and pass the .onnx file")
        onnx, model = spec.onnx_path, spec.name
        source = sha256_of(onnx)
        if args.precision == "fp16":  # strongly typed: the graph decides, so build from the fp16 graph
            from nightvision.export import convert_to_fp16

            onnx = convert_to_fp16(onnx, Path(args.engines) / f"{model}-fp16.onnx")
    profile = Profile(Profile.parse(args.min), Profile.parse(args.opt), Profile.parse(args.max))
    plan = ensure_plan(
        onnx,
        args.engines,
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
    from nightvision.specs import list_specs

    for spec in list_specs():
        ready = "onnx" if spec.has_onnx else "missing" if spec.onnx else "train it"
        print(f"{spec.name:<12} {spec.family:<11} {'[' + ready + ']':<10} {spec.summary}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nightvision.export import convert_to_fp16, export_onnx, record_in_manifest

    kwargs = {"downscale": args.downscale} if args.downscale else {}
    path = export_onnx(args.model, args.output, weights=args.weights, opset=args.opset, **kwargs)
    if args.fp16:
        path = convert_to_fp16(path, path)
    manifest = record_in_manifest(path)
    print(f"wrote {path} (recorded in {manifest})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from nightvision.evaluation.evaluate import classical_methods, evaluate, find_inputs, our_methods, reference_methods
    from nightvision.specs import get_spec, list_specs

    names = args.models.split(",") if args.models else [s.name for s in list_specs() if s.has_onnx]
    for name in names:
        if not get_spec(name).has_onnx:
            raise InputError(f"model {name!r} ships no ONNX graph to evaluate (shipped: see nightvision models)")
    inputs, targets = find_inputs(args.data, brackets=args.brackets)
    if args.limit:
        inputs, targets = inputs[: args.limit], (targets[: args.limit] if targets else None)
    methods = classical_methods() + our_methods(names, threads=args.threads)
    if args.references:
        methods += reference_methods(args.references)
    kind = "pairs" if targets else "unpaired images"
    print(f"scoring {len(methods)} methods on {len(inputs)} {kind} from {args.data}", file=sys.stderr)
    result = evaluate(methods, inputs, targets, args.out)
    print(result.markdown(), end="")
    print("wrote " + ", ".join(str(p) for p in result.paths))
    return 0


def _recipe_model(rest: list[str]) -> str:
    """The model a training command line names (``--model`` wins over the recipe's ``model``)."""
    from nightvision.training.config import tomllib  # tomllib, or tomli on Python 3.10

    model = "zero-dce++"
    for i, arg in enumerate(rest):
        key, eq, value = arg.partition("=")
        value = value if eq else (rest[i + 1] if i + 1 < len(rest) else "")
        if key == "--config" and Path(value).is_file():
            with open(value, "rb") as f:
                model = tomllib.load(f).get("model", model)
    for i, arg in enumerate(rest):
        key, eq, value = arg.partition("=")
        if key == "--model":
            model = value if eq else (rest[i + 1] if i + 1 < len(rest) else model)
    return model


def cmd_train(args: argparse.Namespace) -> int:
    import importlib

    from nightvision.specs import get_spec

    try:
        spec = get_spec(_recipe_model(args.rest))
    except ImportError as err:
        raise NightvisionError(
            f"training needs torch and the repository's training/ package ({err}); "
            "from a clone: pip install -e '.[train]'"
        ) from err
    module = (
        "nightvision.training.zero_reference"
        if spec.family == "curve"
        else "nightvision.training.retinex"
        if spec.name == "retinexnet"
        else "nightvision.training.supervised"
    )
    try:
        train_main = importlib.import_module(module).main
    except ImportError as err:
        raise NightvisionError(f"training needs torch: pip install -e '.[train]' ({err})") from err
    train_main(args.rest)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from nightvision import __version__

    parser = argparse.ArgumentParser(prog="nightvision", description="Real-time low-light video enhancement.")
    parser.add_argument("--version", action="version", version=f"nightvision {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="-v: info logging, -vv: debug")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("enhance", help="enhance an image, a folder or a video file")
    p.add_argument("input", help="image, video (mp4/mkv/avi/mov) or folder (recursive)")
    p.add_argument("-o", "--output", required=True, help="output file, or folder for a folder input")
    p.add_argument("--crf", type=int, default=18, help="x264 quality of video outputs (lower is better)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_args(p)
    p.set_defaults(func=cmd_enhance)

    p = sub.add_parser("demo", help="enhance a clip (or a synthetic one) and save a side-by-side picture")
    p.add_argument("video", nargs="?", help="a low-light video; default: a synthetic dark clip")
    p.add_argument("-o", "--output", default="demo", help="output folder (default: demo/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_model_args(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="enhance a live camera, stream or file in real time")
    p.add_argument("source", help="camera (0, /dev/video0), file, folder, rtsp://, http://, gst://, synthetic://")
    p.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        help="repeatable: out.mp4, frames/, http://127.0.0.1:8090/, display://, null:// (default: display)",
    )
    p.add_argument("--headless", action="store_true", help="no window (default output becomes null://)")
    p.add_argument("--policy", choices=["latest", "lossless"], help="default: latest for live sources, else lossless")
    p.add_argument(
        "--smooth",
        action="store_true",
        help="smooth the curve map over time (off by default: measured to add pumping on real clips)",
    )
    p.add_argument("--hud", action="store_true", help="draw FPS and latency on the output")
    p.add_argument("--stats-json", help="write the final summary to this JSON file")
    p.add_argument("--loop", type=int, default=0, help="files and folders: extra passes (-1: forever)")
    p.add_argument("--width", type=int, default=0, help="camera: requested width")
    p.add_argument("--height", type=int, default=0, help="camera: requested height")
    p.add_argument("--fps", type=float, default=0.0, help="camera: requested frame rate")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    _add_model_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="measure latency and FPS per model, backend and size (and the pipeline)")
    p.add_argument("--models", default="zero-dce++,zero-dce", help="comma-separated models")
    p.add_argument(
        "--backends",
        default="onnxruntime",
        help="comma-separated: onnxruntime, torch, tensorrt; GPU: torch:fp16, torch:fp16+graphs, torch:fp16+cl+graphs",
    )
    p.add_argument("--sizes", default="480p,720p,1080p", help="comma-separated: 480p,720p,1080p,4k or WxH")
    p.add_argument("--seconds", type=float, default=2.0, help="measuring time per cell")
    p.add_argument("--warmup", type=int, default=3, help="warm-up calls per cell")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: one per core)")
    p.add_argument("--no-reference", action="store_true", help="skip the eager-PyTorch reference rows")
    p.add_argument(
        "--pipeline",
        nargs="?",
        const="",
        default=None,
        help="also benchmark the pipeline on VIDEO (no value: a synthetic 720p clip)",
    )
    p.add_argument("--out", help="output folder (default: benchmarks/results/HOSTNAME)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("build", help="build (or reuse) a TensorRT plan for a model or ONNX file")
    p.add_argument("model", help="registered model or an .onnx file")
    p.add_argument(
        "--precision",
        choices=["fp32", "fp16"],
        default="fp32",
        help="fp16 builds from an fp16 copy of the graph (for an .onnx argument: a label; the graph decides)",
    )
    p.add_argument("--min", default="64x64", help="smallest input, HEIGHTxWIDTH")
    p.add_argument("--opt", default="720x1280", help="input size to optimise for, HEIGHTxWIDTH")
    p.add_argument("--max", default="1080x1920", help="largest input, HEIGHTxWIDTH")
    p.add_argument("--workspace", type=float, default=2.0, help="builder workspace in GiB")
    p.add_argument("--version-compatible", action="store_true", help="plan that runs on later TensorRT versions")
    p.add_argument("--engines", default="engines", help="plan cache folder (default: engines/)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("eval", help="score models, classical baselines and reference models on a folder")
    p.add_argument("--data", required=True, help="LOL-style folder (low/, high/), brackets (--brackets) or images")
    p.add_argument("--models", help="comma-separated shipped models (default: all of them)")
    p.add_argument("--brackets", action="store_true", help="DATA is exposure brackets: score their test split")
    p.add_argument("--references", help="folder of the official weights (zero-dce/, zero-dce-pp/, sci/); needs torch")
    p.add_argument("--out", default="eval-results", help="folder for per_image.csv, summary.md/json, grid.png")
    p.add_argument("--limit", type=int, default=0, help="score only the first N images")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = its default)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("export", help="export a model to ONNX (needs the train extra)")
    p.add_argument("model", help="registered model")
    p.add_argument("-o", "--output", required=True, help="destination .onnx file")
    p.add_argument("--weights", help="checkpoint to export instead of the shipped weights")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17)")
    p.add_argument("--downscale", type=int, default=0, help="zero-dce++: curve-estimation downscale override")
    p.add_argument("--fp16", action="store_true", help="fp16 weights and activations; fp32 I/O and normalisation")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "train", help="train a model: curve models unpaired, restoration models on pairs (train extra)", add_help=False
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="--config FILE.toml and --key value overrides")
    p.set_defaults(func=cmd_train)
    return parser


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
        args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx"):  # the exporter's own progress chatter
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print("nightvision: interrupted", file=sys.stderr)
        return 130
    except (NightvisionError, OSError) as err:
        if args.verbose > 1:
            log.exception("failed")
        print(f"nightvision: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
