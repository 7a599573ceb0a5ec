"""`execrl bench learner --estimators gae,grpo,...`: one PPO update's time and peak memory
per advantage estimator, on DeepSpeed engines and the same synthetic batch (four samples
per prompt).  The critic-free estimators build no critic: no value model's forward and
backward, no critic weights or Adam states, so a step should need clearly less of both
than PPO with a critic; the ratios against `gae` say how much.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from learner.bench import BenchSpec, compare_sides

ESTIMATORS = ("gae", "grpo", "rloo", "reinforce_pp")


def run_estimator_bench(estimators: list[str], size: str = "tiny", zero: int = 0, steps: int = 5,
                        model_dir: str | None = None, **kw) -> dict:
    """Every estimator in its own spawned process (peak RSS of its own), updates interleaved."""
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown or not estimators:
        raise ValueError(f"--estimators: unknown {unknown or 'empty list'}; choose from {', '.join(ESTIMATORS)}")
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample

    with tempfile.TemporaryDirectory() as tmp:
        path = model_dir or str(init_model(Path(tmp) / size, size, corpus=list(stdlib_source_sample(300_000))))
        spec = BenchSpec(path, size, zero, steps, **kw)
        rows = compare_sides([("deepspeed", replace(spec, estimator=e)) for e in estimators])
    base = next((r for r in rows if r["estimator"] == "gae"), rows[0])
    ratios = {r["estimator"]: {"time": r["s_per_update"] / base["s_per_update"],
                               "peak_rss": r["peak_rss_mb"] / base["peak_rss_mb"]} for r in rows}
    shared = {k: v for k, v in asdict(spec).items() if k not in ("model_dir", "estimator")}
    return {"zero": zero, "steps": steps, "spec": shared, "baseline": base["estimator"], "results": rows,
            "ratios": ratios}


def format_estimator_table(report: dict) -> str:
    s = report["spec"]
    lines = [f"PPO update per estimator (experience + 1 epoch), {s['size']} model, batch {s['batch_size']} x "
             f"<= {s['prompt_len'] + s['completion_len']} tokens, {s['threads']} threads, DeepSpeed ZeRO-{report['zero']}, "
             f"median of {report['steps']} updates",
             f"{'estimator':<13} {'s/update':>9} {'peak RSS MB':>12} {'time vs ' + report['baseline']:>13} "
             f"{'RSS vs ' + report['baseline']:>12}"]
    for r in report["results"]:
        ratio = report["ratios"][r["estimator"]]
        lines.append(f"{r['estimator']:<13} {r['s_per_update']:>9.3f} {r['peak_rss_mb']:>12,.0f} "
                     f"{ratio['time']:>12.2f}x {ratio['peak_rss']:>11.2f}x")
    return "\n".join(lines)
