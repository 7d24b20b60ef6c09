"""What `fastscnn benchmark` reports: the machine, int8/float32 ratios and markdown tables."""

import os
import platform

CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine_info():
    flags, name = set(), platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name in ("", "x86_64"):
                    name = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info = {
        "cpu": name,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
    }
    try:
        from importlib.metadata import version

        info.update(tensorflow=version("tensorflow"), litert=version("ai-edge-litert"))
    except Exception:  # a missing distribution only leaves the version out
        pass
    return info


def ratios(records, numerator="int8", denominator="float32"):
    """Median-latency ratio of exported `numerator` over `denominator` per size and threads."""
    table = {}
    for r in records:
        if r["kind"] == "tflite" and r["precision"] in (numerator, denominator):
            key = (r["variant"].replace(r["precision"], "*"), tuple(r["size"]), r["threads"])
            table.setdefault(key, {})[r["precision"]] = r["median_ms"]
    out = []
    for (variant, size, threads), values in sorted(table.items()):
        if numerator in values and denominator in values:
            out.append(
                {
                    "variant": variant,
                    "size": list(size),
                    "threads": threads,
                    f"{numerator}_ms": values[numerator],
                    f"{denominator}_ms": values[denominator],
                    "ratio": round(values[numerator] / values[denominator], 3),
                }
            )
    return out


def size_text(size):
    return f"{size[0]}x{size[1]}"


def markdown(records, info, ratio_rows):
    """Tables: latency per variant and size (one column per thread count), then memory/size."""
    threads = sorted({r["threads"] for r in records})
    variants = list(dict.fromkeys(r["variant"] for r in records))
    sizes = sorted({tuple(r["size"]) for r in records}, key=lambda s: s[0] * s[1])
    by_key = {(r["variant"], tuple(r["size"]), r["threads"]): r for r in records}
    flags = ", ".join(f for f, on in info.get("cpu_flags", {}).items() if on)
    lines = [
        f"CPU: {info.get('cpu', '?')} ({info.get('cpus', '?')} cores; {flags}); "
        f"TensorFlow {info.get('tensorflow', '?')}, LiteRT {info.get('litert', '?')} (XNNPACK).",
        "",
        "Latency, median / p90 in ms:",
        "",
        "| variant | size | "
        + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in threads)
        + " | file MB | peak RSS MB |",
        "|---|---|" + "---:|" * len(threads) + "---:|---:|",
    ]
    for size in sizes:
        for variant in variants:
            cells = [by_key.get((variant, size, t)) for t in threads]
            present = [c for c in cells if c]
            if not present:
                continue
            timing = [f"{c['median_ms']:.1f} / {c['p90_ms']:.1f}" if c else "" for c in cells]
            peak = max(c["peak_rss_mb"] for c in present)
            lines.append(
                f"| {variant} | {size_text(size)} | "
                + " | ".join(timing)
                + f" | {present[0]['file_mb']:.2f} | {peak:.0f} |"
            )
    if ratio_rows:
        lines += [
            "",
            "int8 / float32 median latency (below 1: int8 is faster):",
            "",
            "| variant | size | threads | float32 ms | int8 ms | ratio |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for row in ratio_rows:
            lines.append(
                f"| {row['variant']} | {size_text(row['size'])} | {row['threads']} | "
                f"{row['float32_ms']:.1f} | {row['int8_ms']:.1f} | {row['ratio']:.2f} |"
            )
    lines += [
        "",
        "Peak RSS is the worker process's maximum resident memory (Python and the "
        "runtime included); `benchmark.json` also has `model_rss_mb`, the growth after "
        "imports.",
    ]
    return "\n".join(lines) + "\n"
