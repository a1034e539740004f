"""The numbers, tables and plots of ``seg-replay-bench`` (no rclpy): from a ReplayRun's publish and arrival times,
node samples and diagnostics to report.json / report.md / PNG plots.

Per run and output topic: frames received and lost (published, never came back), latency publish -> receipt here
(mean, p50, p90, p99, max, jitter = its standard deviation), throughput (received frames over their arrival span)
and the spread of inter-arrival times; per run: the achieved publish rate, the node's frame accounting and stage
timings (/diagnostics, since the node started), its CPU % (CPU seconds over wall seconds of the run; 100 = one
core) and RSS.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

NODE_COUNTERS = ("frames_in", "frames_out", "dropped", "bad_frames", "failed", "middleware_lost", "input_skipped")
LOSS_LIMIT = 0.05
"""The peak-throughput search's criterion: at most this fraction of frames lost (as NVIDIA's ros2_benchmark)."""


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return dict.fromkeys(("mean", "p50", "p90", "p99", "max", "jitter"))
    array = np.asarray(values, np.float64)
    return {
        "mean": float(array.mean()),
        "p50": float(np.percentile(array, 50)),
        "p90": float(np.percentile(array, 90)),
        "p99": float(np.percentile(array, 99)),
        "max": float(array.max()),
        "jitter": float(array.std()),
    }


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def run_numbers(run) -> dict:
    """The report entry of one ReplayRun (see the module docstring)."""
    publish_ns = {stamp: published for published, stamp, _ in run.published}
    times = [published for published, _, _ in run.published]
    span = (times[-1] - times[0]) / 1e9 if len(times) > 1 else 0.0
    outputs = {}
    for output, arrivals in run.arrivals.items():
        got = sorted(arrivals[stamp] for stamp in publish_ns if stamp in arrivals)
        latencies = [(arrivals[stamp] - publish_ns[stamp]) / 1e6 for stamp in publish_ns if stamp in arrivals]
        gaps = np.diff(got) / 1e6 if len(got) > 1 else np.zeros(0)
        arrival_span = (got[-1] - got[0]) / 1e9 if len(got) > 1 else 0.0
        outputs[output] = {
            "received": len(latencies),
            "lost": len(publish_ns) - len(latencies),
            "latency_ms": _stats(latencies),
            "throughput_fps": (len(got) - 1) / arrival_span if arrival_span > 0 else None,
            "interarrival_ms_std": float(gaps.std()) if gaps.size else None,
        }
    first, last = (run.diagnostics[0], run.diagnostics[-1]) if run.diagnostics else ({}, {})
    node = {key: _delta(first, last, key) for key in NODE_COUNTERS}
    node["stages_ms_p50"] = {
        key.removesuffix("_ms_p50_total"): _number(value)
        for key, value in last.items()
        if key.endswith("_ms_p50_total")
    }
    if len(run.samples) > 1:
        (t0, cpu0, _), (t1, cpu1, _) = run.samples[0], run.samples[-1]
        node["cpu_percent"] = 100.0 * (cpu1 - cpu0) / (t1 - t0) if t1 > t0 else None
    rss = [mb for _, _, mb in run.samples]
    node.update(rss_mb_first=rss[0] if rss else None, rss_mb_max=max(rss) if rss else None)
    node["rss_mb_last"] = rss[-1] if rss else None
    published = len(run.published)
    mask = outputs.get("semantic/mask", {"lost": published})
    return {
        "rate": run.rate,
        "published": published,
        "publish_rate_hz": (published - 1) / span if span > 0 else None,
        "lost_fraction": mask["lost"] / published if published else None,
        "seconds": run.seconds,
        "outputs": outputs,
        "node": node,
    }


def _delta(first: dict, last: dict, key: str) -> int | None:
    after, before = _number(last.get(key)), _number(first.get(key))
    return None if after is None or before is None else int(after - before)


def write_run_plots(run, folder: Path) -> list[Path]:
    """latency.png (over the run, per output), latency_hist.png and fps.png (mask arrivals per second) of a
    ReplayRun; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    publish_ns = {stamp: published for published, stamp, _ in run.published}
    start = run.published[0][0] if run.published else 0
    paths = []
    figure, axes = plt.subplots(figsize=(8, 3.5))
    for output, arrivals in run.arrivals.items():
        points = sorted((publish_ns[s] - start, arrivals[s] - publish_ns[s]) for s in arrivals if s in publish_ns)
        if points:
            axes.plot([t / 1e9 for t, _ in points], [d / 1e6 for _, d in points], ".-", label=output, markersize=3)
    axes.set(xlabel="published at (s)", ylabel="latency publish -> receipt (ms)", title="latency over the replay")
    axes.legend(fontsize=7)
    paths.append(_save(figure, folder / "latency.png"))
    figure, axes = plt.subplots(figsize=(6, 3.5))
    mask = run.arrivals.get("semantic/mask", {})
    latencies = [(mask[s] - publish_ns[s]) / 1e6 for s in mask if s in publish_ns]
    axes.hist(latencies, bins=30)
    axes.set(xlabel="semantic/mask latency (ms)", ylabel="frames", title="latency histogram")
    paths.append(_save(figure, folder / "latency_hist.png"))
    figure, axes = plt.subplots(figsize=(6, 3.5))
    seconds = [(t - start) / 1e9 for t in mask.values()]
    if seconds:
        counts, edges = np.histogram(seconds, bins=max(1, int(np.ceil(max(seconds)))), range=(0, np.ceil(max(seconds))))
        axes.step(edges[:-1], counts, where="post")
    axes.set(xlabel="time (s)", ylabel="masks per second", title="output rate")
    paths.append(_save(figure, folder / "fps.png"))
    return paths


def write_iou_plot(accuracy: dict, folder: Path) -> Path | None:
    """per_class_iou.png of the scored masks (None without scores)."""
    per_class = (accuracy.get("semantic") or {}).get("per_class_iou") or {}
    names = [name for name, iou in per_class.items() if iou is not None]
    if not names:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(8, 3.5))
    axes.bar(names, [per_class[name] for name in names])
    axes.set(ylabel="IoU", ylim=(0, 1), title="per-class IoU of the masks received")
    axes.tick_params(axis="x", rotation=60, labelsize=7)
    return _save(figure, folder / "per_class_iou.png")


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _fmt(value, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    """report.md: the setup, one table of the runs, per-output latency of each run, accuracy, files."""
    lines = [
        f"# Replay benchmark: {report['bag']}",
        "",
        f"Node: {report['node'].get('model')} via {report['node'].get('backend')} on {report['node'].get('device')} "
        f"{report['node'].get('precision')}, model input {report['node'].get('model_input')}, task "
        f"{report['node'].get('task')}; params {report['params_file']} {report['params'] or ''}; bag "
        f"{report['frames']} frames at {_fmt(report['bag_rate_hz'])} Hz on {report['image_topic']}.",
        "",
        "| run | rate x | published | publish Hz | lost % | mask p50 ms | p99 ms | jitter ms | out fps | node CPU % "
        "| RSS max MB | node dropped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in report["runs"].items():
        mask = run["outputs"].get("semantic/mask", {})
        latency = mask.get("latency_ms", {})
        lines.append(
            f"| {name} | {run['rate']:.3g} | {run['published']} | {_fmt(run['publish_rate_hz'], '.2f')} | "
            f"{_fmt(100 * run['lost_fraction'] if run['lost_fraction'] is not None else None)} | "
            f"{_fmt(latency.get('p50'))} | {_fmt(latency.get('p99'))} | {_fmt(latency.get('jitter'))} | "
            f"{_fmt(mask.get('throughput_fps'), '.2f')} | {_fmt(run['node'].get('cpu_percent'))} | "
            f"{_fmt(run['node'].get('rss_mb_max'))} | {run['node'].get('dropped')} |"
        )
    if report.get("peak"):
        peak = report["peak"]
        lines += ["", f"Peak throughput (<= {100 * LOSS_LIMIT:.0f} % frames lost): {_fmt(peak['rate_hz'], '.2f')} Hz "
                  f"(rate x {_fmt(peak['rate'], '.3g')}; probes: {peak['probes']})."]  # fmt: skip
    for name, run in report["runs"].items():
        lines += [
            "",
            f"## {name}: per output",
            "",
            "| output | received | lost | mean | p50 | p90 | p99 | max | jitter |",
        ]
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for output, entry in run["outputs"].items():
            latency = entry["latency_ms"]
            cells = " | ".join(_fmt(latency[key]) for key in ("mean", "p50", "p90", "p99", "max", "jitter"))
            lines.append(f"| {output} | {entry['received']} | {entry['lost']} | {cells} |")
        stages = run["node"]["stages_ms_p50"]
        lines.append("")
        lines.append("Node stages (p50 ms since start): " + ", ".join(f"{k} {_fmt(v)}" for k, v in stages.items()))
    accuracy = report["accuracy"]
    lines += ["", "## Accuracy against the bag's ground truth", ""]
    if not accuracy.get("frames_scored"):
        lines.append(accuracy.get("note", "no frame was scored"))
    else:
        semantic = accuracy["semantic"]
        lines.append(
            f"{accuracy['frames_scored']} frames ({accuracy['run']} run): mIoU {_fmt(semantic['mIoU'], '.3f')}, "
            f"mDice {_fmt(semantic['mDice'], '.3f')}, pixel accuracy {_fmt(semantic['pixel_accuracy'], '.3f')}"
        )
        if accuracy.get("panoptic"):
            lines.append(", ".join(f"{k} {_fmt(v, '.3f')}" for k, v in accuracy["panoptic"].items()))
        lines.append(f"Reproduce: `{accuracy['seg_eval']}`")
    lines += ["", "## Files", "", *(f"- {path}" for path in report["files"])]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """report.json (strict JSON) and report.md in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(json.dumps(report, indent=2, default=str, allow_nan=False) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
