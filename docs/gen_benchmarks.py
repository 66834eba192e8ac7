"""The benchmark tables of the docs, written from the JSON results in ``benchmarks/results/``.

Figures in the docs must come from a run someone can find again, so nobody types them:
``benchmarks/record.py`` saves a benchmark's JSON document together with its date, command,
git commit and machine (CPU model, family and model number, vector extensions, CPU count,
load), and this module turns every saved document into Markdown tables.

It runs as an MkDocs hook (``hooks:`` in ``mkdocs.yml``): while the site is built it replaces
the line ``<!-- recorded-benchmarks -->`` of ``docs/benchmarks.md`` with the tables, so every
``mkdocs build`` (and ``make test``, which builds with ``--strict``) shows exactly the files
that are committed; there is no generated page to forget to refresh. A result file that does
not parse, or that lacks its ``recorded`` provenance, fails the build.

Run on its own it prints the generated Markdown::

    python docs/gen_benchmarks.py
    python docs/gen_benchmarks.py --results benchmarks/results

Standard library only: building the docs must not import TensorFlow.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = "benchmarks.md"
MARKER = "<!-- recorded-benchmarks -->"
DASH = "—"


class ResultError(ValueError):
    """A result file that cannot be shown: unreadable JSON or no ``recorded`` provenance."""


# -- formatting ------------------------------------------------------------------------------


def number(value, digits=3):
    """``value`` with ``digits`` significant digits (thousands separated), or a dash for None."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, (int, float)):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - int(f"{magnitude:e}".split("e")[1]))
    return f"{value:,.{decimals}f}"


def ratio(value):
    return DASH if value is None else f"{value:.2f}"


def code(text):
    return f"`{text}`" if text else DASH


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- provenance ------------------------------------------------------------------------------

# AMD's family / model numbers as /proc/cpuinfo reports them, for a readable machine name.
AMD_MICROARCHITECTURES = (
    (23, range(0, 0x30), "Zen / Zen+"),
    (23, range(0x30, 0x100), "Zen 2"),
    (25, range(0, 0x10), "Zen 3"),
    (25, range(0x10, 0x20), "Zen 4"),
    (25, range(0x20, 0x60), "Zen 3"),
    (25, range(0x60, 0x100), "Zen 4"),
    (26, range(0, 0x100), "Zen 5"),
)


def microarchitecture(recorded):
    """"Zen 4" and the like for AMD CPUs whose family and model say so; None otherwise."""
    if recorded.get("cpu_vendor") != "AuthenticAMD":
        return None
    try:
        family, model = int(recorded["cpu_family"]), int(recorded["cpu_model_number"])
    except (KeyError, TypeError, ValueError):
        return None
    for known_family, models, name in AMD_MICROARCHITECTURES:
        if family == known_family and model in models:
            return name
    return None


def machine_line(recorded):
    parts = [recorded.get("cpu_model") or "unknown CPU"]
    details = []
    if recorded.get("cpu_family") is not None:
        details.append(f"family {recorded['cpu_family']}, model {recorded.get('cpu_model_number', '?')}")
    name = microarchitecture(recorded)
    if name:
        details.append(name)
    if details:
        parts.append(f"({'; '.join(details)})")
    if recorded.get("isa_summary"):
        parts.append(f"— {recorded['isa_summary']}")
    cpus = recorded.get("usable_cpus") or recorded.get("cpus")
    if cpus:
        parts.append(f"— {cpus} CPUs")
    if recorded.get("hypervisor"):
        parts.append("under a hypervisor")
    return " ".join(parts)


def provenance(path, document):
    recorded = document["recorded"]
    versions = document.get("versions") or {}
    commit = recorded.get("git_commit")
    commit_text = DASH if not commit else f"`{commit[:10]}`" + (" (work tree had changes)" if recorded.get("git_dirty") else "")
    load = (recorded.get("load_average_start"), recorded.get("load_average_end"))
    rows = [
        ("date (UTC)", recorded["date"].replace("T", " ").replace("+00:00", "")),
        ("command", code(recorded.get("command"))),
        ("machine", machine_line(recorded)),
        ("vector extensions", ", ".join(recorded.get("isa") or []) or DASH),
        ("software", ", ".join(f"{name} {version}" for name, version in versions.items()) or DASH),
        ("commit", commit_text),
        ("load average (1, 5, 15 min) before → after", " → ".join(
            DASH if value is None else ", ".join(str(item) for item in value) for value in load)),
        ("wall time of the run", f"{number(recorded.get('seconds'))} s"),
        ("note", recorded.get("note") or DASH),
        ("file", f"`{path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name}`"),
    ]
    return table(("recorded", "value"), rows)


# -- per-benchmark tables ----------------------------------------------------------------------


def rnn_speed_tables(document):
    out = []
    settings = document.get("settings") or {}
    matmul = document.get("matmul_gflops") or {}
    if matmul:
        figures = [f"TensorFlow {number(matmul.get('tensorflow'))} (best {number(matmul.get('tensorflow_best'))})"]
        if "torch" in matmul:
            figures.append(f"PyTorch {number(matmul.get('torch'))} (best {number(matmul.get('torch_best'))})")
        out.append(f"float32 {matmul.get('size', 1024)}³ matmul, GFLOP/s (median of repeats): " + "; ".join(figures) + ".")
    out.append(
        f"Median of {settings.get('repeats', '?')} repeats after {settings.get('warmup', '?')} untimed warm-up call(s); "
        f"threads: {', '.join(f'{k} {v}' for k, v in (document.get('threads') or {}).items()) or DASH}."
    )
    rows = document.get("rows") or []
    if rows:
        body = []
        for row in rows:
            if "error" in row:
                body.append((row.get("layer"), row.get("config"), row.get("framework"), f"error: {row['error']}",
                             DASH, DASH, DASH, DASH, DASH))
                continue
            tflite = row.get("tflite") or {}
            body.append((
                row.get("layer"), row.get("config"), row.get("framework"),
                number(row.get("train_tokens_per_s")), number(row.get("infer_tokens_per_s")),
                number(row.get("infer_tensor_tokens_per_s")), number(row.get("latency_ms")),
                number(((tflite.get("float32") or {}).get("latency_ms") or {}).get("median_ms")),
                number(((tflite.get("int8") or {}).get("latency_ms") or {}).get("median_ms")),
            ))
        out.append("**Tokens per second and latency** (train: one optimizer step; infer: `predict_on_batch`; "
                   "infer (tensor): the forward pass in a `tf.function`; latency: one sequence, batch 1; "
                   "TFLite: batch 1, 1 thread, per sequence):")
        out.append(table(("layer", "B-T-E-H", "framework", "train tokens/s", "infer tokens/s",
                          "infer (tensor) tokens/s", "latency ms", "TFLite float32 ms", "TFLite int8 ms"), body))
    summary = document.get("summary") or []
    if summary:
        body = [(row.get("layer"), row.get("config"), ratio(row.get("train_vs_torch")), ratio(row.get("infer_vs_torch")),
                 ratio(row.get("infer_tensor_vs_torch")), ratio(row.get("train_vs_keras")), ratio(row.get("infer_vs_keras")),
                 f"{ratio(row.get('train_vs_nlpkit_loop'))} / {ratio(row.get('infer_vs_nlpkit_loop'))}")
                for row in summary]
        out.append("**nlpkit ÷ the others** (tokens/s ratios; above 1 means nlpkit is faster; `loop` is nlpkit with "
                   "`jit_compile=False`):")
        out.append(table(("layer", "B-T-E-H", "train vs torch", "infer vs torch", "infer (tensor) vs torch",
                          "train vs Keras", "infer vs Keras", "train / infer vs loop"), body))
    forms = document.get("tflite_lstm_forms_summary") or []
    if forms:
        threads = sorted({key.rsplit("_", 1)[1] for row in forms for key in row if key.startswith("fused_wall_ms_")})
        header = ["model", "T-E-H", "precision", "fused / WHILE bytes"]
        header += [f"fused / WHILE ms, {t.rstrip('t')} thread{'s' if t != '1t' else ''} (WHILE ÷ fused)" for t in threads]
        body = []
        for row in forms:
            if "error" in row:
                body.append([row.get("model", DASH), row.get("config"), f"error: {row['error']}", DASH] + [DASH] * len(threads))
                continue
            cells = [row.get("model"), row.get("config"), row.get("precision"),
                     f"{number(row.get('fused_bytes'))} / {number(row.get('while_bytes'))}"]
            for t in threads:
                cells.append(f"{number(row.get(f'fused_wall_ms_{t}'))} / {number(row.get(f'while_wall_ms_{t}'))} "
                             f"({ratio(row.get(f'speedup_wall_{t}'))})")
            body.append(cells)
        out.append("**TFLite LSTM forms**: the fused `UNIDIRECTIONAL_SEQUENCE_LSTM` op against the `WHILE` loop, "
                   "batch 1, wall-clock ms per sequence:")
        out.append(table(header, body))
    return out


def generic_tables(document):
    """For benchmarks without a table of their own yet: the top-level figures as they are."""
    skip = {"recorded", "machine", "versions", "command", "benchmark"}
    rows = [(f"`{key}`", number(value) if not isinstance(value, (dict, list)) else f"{type(value).__name__}, see the file")
            for key, value in document.items() if key not in skip]
    return ["No table layout is written for this benchmark yet; its top-level fields:", table(("field", "value"), rows)]


RENDERERS = {"rnn_speed": rnn_speed_tables}


# -- the page ----------------------------------------------------------------------------------


def load_results(results_dir=RESULTS):
    """``[(path, document)]`` for every ``*.json`` under ``results_dir``, newest run first."""
    loaded = []
    for path in sorted(Path(results_dir).resolve().glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ResultError(f"{path}: not a readable JSON document ({error})") from None
        if not isinstance(document, dict) or not isinstance(document.get("recorded"), dict) \
                or not document["recorded"].get("date"):
            raise ResultError(f"{path}: no 'recorded' provenance with a date; save results with "
                              f"`python benchmarks/record.py -- benchmarks/<script>.py ...`")
        loaded.append((path, document))
    loaded.sort(key=lambda item: item[1]["recorded"]["date"], reverse=True)
    return loaded


def render(results_dir=RESULTS):
    results = load_results(results_dir)
    if not results:
        return "_No recorded results in `benchmarks/results/` yet._\n"
    sections = []
    for path, document in results:
        name = document.get("benchmark") or path.stem.split("-")[0]
        recorded = document["recorded"]
        lines = [f"### `{name}`, {recorded['date'][:10]}", provenance(path, document)]
        lines += RENDERERS.get(name, generic_tables)(document)
        notes = document.get("notes") or []
        if notes:
            lines.append("Notes the benchmark printed: " + " ".join(notes))
        sections.append("\n\n".join(lines))
    return "\n\n".join(sections) + "\n"


# -- MkDocs hook -------------------------------------------------------------------------------


def on_config(config, **kwargs):
    """``mkdocs serve`` rebuilds when a result file changes."""
    if RESULTS.is_dir():
        config.watch.append(str(RESULTS))
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ResultError(f"docs/{PAGE} lost its {MARKER!r} line, where the recorded tables go")
    return markdown.replace(MARKER, render(RESULTS))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of result JSON files")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(render(args.results))
    except ResultError as error:
        print(f"gen_benchmarks.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
