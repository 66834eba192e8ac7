"""Runs one benchmark script and saves its JSON document, with where and when it ran, for the docs.

Every script in ``benchmarks/`` prints one JSON document on stdout, but not all of them say
when they ran or which instruction set the CPU has, and a figure without its machine and date
cannot be compared with another. This wrapper runs the script with the same interpreter,
passes its log (stderr) through, parses its stdout and adds a top-level ``recorded`` object:

- ``date`` (UTC, ISO 8601, when the run started) and ``seconds`` (its wall time);
- ``command`` as it would be typed, and the git commit it ran at (``git_dirty`` when the work
  tree had changes);
- the machine: CPU model, family and model number, logical CPUs (and those this process may
  use), the vector extensions the kernel reports (``isa``: SSE4.2 / AVX / AVX2 / AVX-512 /
  AMX flags) and the load average before and after;
- ``note``: free text, e.g. that the machine was shared with other work.

The document goes to ``--output`` (default ``benchmarks/results/<benchmark>-<date>.json``),
where ``docs/gen_benchmarks.py`` turns it into the tables of the docs' benchmarks page::

    python benchmarks/record.py --note "idle machine" -- benchmarks/rnn_speed.py --quick
    python benchmarks/record.py --output benchmarks/results/scan.json -- benchmarks/parallel_scan_speed.py

The benchmark's own exit status is returned; a document is saved only if stdout parsed as JSON.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The /proc/cpuinfo flags that decide which kernels TensorFlow, XLA and oneDNN can use.
ISA_PREFIXES = ("sse4_2", "avx", "fma", "amx", "f16c")


def cpu_info():
    """CPU model, family, model number and vector-extension flags, from /proc/cpuinfo (Linux)."""
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "machine": platform.machine()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    fields = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return info
    info["cpu_model"] = fields.get("model name")
    info["cpu_vendor"] = fields.get("vendor_id")
    info["cpu_family"] = fields.get("cpu family")
    info["cpu_model_number"] = fields.get("model")
    flags = fields.get("flags", "").split()
    info["isa"] = sorted(flag for flag in flags if flag.startswith(ISA_PREFIXES))
    info["hypervisor"] = "hypervisor" in flags
    return info


def isa_summary(flags):
    """The widest vector extension among ``flags``: "AVX-512", "AVX2", ... or None."""
    for flag, name in (("amx_tile", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"),
                       ("sse4_2", "SSE4.2")):
        if flag in flags:
            return name
    return None


def git_state():
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                                    check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git_commit": commit, "git_dirty": dirty}


def load_average():
    return [round(value, 2) for value in os.getloadavg()] if hasattr(os, "getloadavg") else None


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=None,
                        help="where to save the document (default benchmarks/results/<benchmark>-<date>.json)")
    parser.add_argument("--note", default="", help="free text saved with the run (load, caveats)")
    parser.add_argument("script", help="the benchmark script, e.g. benchmarks/rnn_speed.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own flags (after --)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    script_args = args.args[1:] if args.args[:1] == ["--"] else args.args
    script = Path(args.script)
    if not script.is_file():
        print(f"record.py: no benchmark script at {str(script)!r}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    machine = cpu_info()
    load_start = load_average()
    clock = time.perf_counter()
    process = subprocess.run([sys.executable, str(script), *script_args], stdout=subprocess.PIPE, text=True)
    seconds = round(time.perf_counter() - clock, 1)
    try:
        document = json.loads(process.stdout)
    except json.JSONDecodeError as error:
        print(f"record.py: {script} did not print one JSON document ({error}); nothing saved", file=sys.stderr)
        return process.returncode or 1
    if not isinstance(document, dict):
        print(f"record.py: {script} printed JSON that is not an object; nothing saved", file=sys.stderr)
        return process.returncode or 1
    document["recorded"] = {
        "date": started.isoformat(timespec="seconds"),
        "seconds": seconds,
        "command": " ".join(["python", script.as_posix(), *script_args]),
        "exit_status": process.returncode,
        **git_state(),
        **machine,
        "isa_summary": isa_summary(machine.get("isa", [])),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "note": args.note,
    }
    name = document.get("benchmark") or script.stem
    output = args.output or RESULTS / f"{name}-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"record.py: saved {output}", file=sys.stderr)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
