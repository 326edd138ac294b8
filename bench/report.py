"""The benchmark's table: its figures, as the docs' benchmark page shows them."""

from __future__ import annotations

from statistics import median


def print_table(results: dict) -> None:
    daily = results["daily"]
    print("\n| measure | time | baseline | ratio |\n|---|---|---|---|")
    print(f"| chain on the real 2019 file / no-op spark-submit | {median(daily['chain_s']):.1f} s "
          f"| {median(daily['noop_spark_submit_s']):.1f} s | {daily['ratio_chain_to_noop']:.2f} |")  # fmt: skip
    if "warm_chain_s" in daily:
        print(f"| the same, warm (a Spark Connect server) / no-op spark-submit | "
              f"{median(daily['warm_chain_s']):.1f} s | {median(daily['noop_spark_submit_s']):.1f} s "
              f"| {daily['ratio_warm_chain_to_noop']:.2f} |")  # fmt: skip
    if "warm_chain_make_up_s" in daily:
        print(f"| the same, warm, as a user runs it after make up (luigid, every service) / no-op "
              f"spark-submit | {median(daily['warm_chain_make_up_s']):.1f} s "
              f"| {median(daily['noop_spark_submit_s']):.1f} s "
              f"| {daily['ratio_warm_make_up_to_noop']:.2f} |")  # fmt: skip
    if "noop_with_class_archive_s" in daily:
        print(f"| the same / no-op spark-submit with the class archive | {median(daily['chain_s']):.1f} s "
              f"| {median(daily['noop_with_class_archive_s']):.1f} s "
              f"| {daily['ratio_chain_to_noop_with_class_archive']:.2f} |")  # fmt: skip
    for size, e in results["scale"].items():
        if "ratio_end_to_end_to_duckdb" in e:
            print(
                f"| ReadUFOs + AggregateUFOsByState, {int(size):,} rows / DuckDB from the CSV, "
                f"same contract | {e['read_ufos_s'] + e['aggregate_s']:.1f} s "
                f"| {e['duckdb_from_csv_s']:.1f} s | {e['ratio_end_to_end_to_duckdb']:.1f} |"
            )
            print(f"| ReadUFOs alone, {int(size):,} rows ({e['bytes'] / 1e6:,.0f} MB): time, "
                  f"peak memory | {e['read_ufos_s']:.1f} s | {e['read_ufos_peak_bytes'] / 1e6:,.0f} MB "
                  f"| |")  # fmt: skip
        print(f"| AggregateUFOsByState, {int(size):,} rows / DuckDB, same contract | "
              f"{e['aggregate_s']:.1f} s | {e['duckdb_s']:.2f} s | {e['ratio_aggregate_to_duckdb']:.1f} |")  # fmt: skip
        if "python_reference_s" in e:
            print(f"| AggregateUFOsByState, {int(size):,} rows / plain Python | {e['aggregate_s']:.1f} s "
                  f"| {e['python_reference_s']:.1f} s | {e['ratio_aggregate_to_python']:.2f} |")  # fmt: skip
    one = (
        results["backfill"]["1"]["seconds"]
        if "1" in results["backfill"]
        else results["backfill"][1]["seconds"]
    )
    for days, e in results["backfill"].items():
        if int(days) > 1:
            print(f"| RangeDaily over {days} run dates / one run date | {e['seconds']:.1f} s "
                  f"| {one:.1f} s | {e['ratio_to_one_date']:.2f} |")  # fmt: skip
            if "rebuild_s" in e:
                print(f"| `etl.tools.rebuild` of those {days} dates / their backfill | "
                      f"{e['rebuild_s']:.1f} s | {e['seconds']:.1f} s | {e['ratio_rebuild_to_backfill']:.2f} |")  # fmt: skip
    print("\n| run dates loaded | database | lake |\n|---|---|---|")
    for days, e in results["backfill"].items():
        if "database_bytes" in e:
            print(
                f"| {days} | {e['database_bytes'] / 1e6:.1f} MB | {e['lake_bytes'] / 1e6:.1f} MB |"
            )
    for days, e in results["backfill"].items():
        for name, t in e.get("producto", {}).items():
            print(
                f"| producto after {days} dates: {name} | {t.get('ms', 0):.1f} ms | {t['bytes']:,} bytes |"
            )
