"""README's tenant-scale benchmark runs end to end at a tiny size, so it cannot rot
between the runs that produce its section of docs/performance.md: it exits 0, prints
every figure, writes its report where it is told (never over docs/performance.md) and
drops its scratch databases. No timing is asserted: a test machine's timings mean
nothing."""

import subprocess
import sys
from pathlib import Path

from customer_analytics_pipeline_tests.test_benchmark_smoke import COMMITTED_REPORT, benchmark_databases

REPOSITORY = Path(__file__).resolve().parents[1]
BENCHMARK = REPOSITORY / "benchmarks" / "tenant_scale_benchmark.py"

TICKS = ("nightly", "hourly, 5% changed", "hourly, nothing changed")
TICK_FIGURES = ("tick wall", "runs", "Dagster events", "Dagster events per organization",
                "database work of the steps", "orchestration = wall - database work",
                "orchestration per organization")
LABELS = (
    "organizations",
    "clients",
    "Dagster storage through PgBouncer",
    *(f"{tick}: {figure}" for tick in TICKS for figure in TICK_FIGURES),
    "customers changed in 5% of organizations",
    "side by side: Dagster's default (direct, planned per partition)",
    "side by side: PgBouncer + subset (production)",
    "side by side: default / PgBouncer + subset (production)",
    "peak memory: benchmark process",
    "peak memory: a PostgreSQL backend",
    "total runtime",
)


def test_tenant_scale_benchmark_runs_at_a_tiny_size(server_url, tmp_path):
    report = tmp_path / "performance.md"
    committed = COMMITTED_REPORT.read_bytes() if COMMITTED_REPORT.exists() else None
    before = benchmark_databases(server_url)

    completed = subprocess.run(
        [sys.executable, str(BENCHMARK), "--sizes", "30", "--customers-per-run", "100",
         "--compare-organizations", "5", "--compare-rounds", "1", "--server-url", server_url,
         "--report", str(report)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )

    output = completed.stdout
    assert completed.returncode == 0, f"{output[-4000:]}\n{completed.stderr[-4000:]}"
    missing = [label for label in LABELS if label not in output]
    assert not missing, f"figures not printed: {missing}\n{output}"
    assert output.count(" 0 runs failed") == len(TICKS), "a run of a tick failed"
    written = report.read_text(encoding="utf-8")
    assert "<!-- tenant_scale_benchmark: begin" in written and "| nightly: orchestration per organization |" in written
    assert (COMMITTED_REPORT.read_bytes() if COMMITTED_REPORT.exists() else None) == committed
    assert benchmark_databases(server_url) <= before, "a scratch database was left behind"
