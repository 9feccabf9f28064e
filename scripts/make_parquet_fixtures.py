"""Writes small Parquet (and Arrow IPC) files with pyarrow, the reference writer, for the data
layer's tests: test/fixtures/data/<name>.parquet plus <name>.expected.json holding the same
records as plain JSON. The records are synthetic (no benchmark data is copied into the repo).

Run from the repo root:  python3 scripts/make_parquet_fixtures.py
"""

import json
import pathlib

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

OUT = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "data"

PROCESSBENCH = [
    {
        "id": f"math-{i}",
        "generator": ["Qwen2-7B-Instruct", "Llama-3.1-8B-Instruct"][i % 2],
        "problem": f"What is {i} + {i + 1}? Give the answer as an integer.",
        "steps": [f"We add {i} and {i + 1}.", f"{i} + {i + 1} = {2 * i + 1 + (i % 3 == 1)}.", f"The answer is $\\boxed{{{2 * i + 1}}}$."][: 2 + i % 2],
        "final_answer_correct": i % 3 != 1,
        "label": 1 if i % 3 == 1 else -1,
    }
    for i in range(7)
]

TRL_BOOL = [
    {
        "prompt": f"Compute {i} * 3.",
        "completions": [f"Multiply {i} by 3.", f"{i} * 3 = {3 * i + (i % 2)}.", f"So the answer is {3 * i + (i % 2)}."],
        "labels": [True, i % 2 == 0, i % 2 == 0],
    }
    for i in range(5)
]

TRL_FLOAT = [
    {
        "prompt": f"Compute {i} - 1.",
        "completions": [f"Subtract 1 from {i}.", f"The answer is {i - 1}."],
        "labels": [1.0, round(0.125 * i, 3)],
    }
    for i in range(5)
]

PRMKIT = [
    {
        "id": f"s{i}",
        "problem": f"Problem {i}: what is 2^{i}?",
        "steps": [f"2^{i} doubles 1 {i} times.", f"That gives {2 ** i}."],
        "answer": str(2**i),
        "labels": [1.0, 1.0 if i % 2 == 0 else 0.0],
        "firstError": -1 if i % 2 == 0 else 1,
        "source": "synthetic",
        "meta": json.dumps({"k": i, "tags": ["a", "b"][: i % 3]}),
    }
    for i in range(4)
]


def write(name: str, rows: list[dict], schema: pa.Schema, row_group_size: int, compression: str) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, OUT / f"{name}.parquet", row_group_size=row_group_size, compression=compression)
    (OUT / f"{name}.expected.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pb_schema = pa.schema(
        [
            ("id", pa.string()),
            ("generator", pa.string()),
            ("problem", pa.string()),
            ("steps", pa.list_(pa.string())),
            ("final_answer_correct", pa.bool_()),
            ("label", pa.int64()),
        ]
    )
    # Several row groups, so the reader's row-group streaming and row numbering are exercised.
    write("processbench", PROCESSBENCH, pb_schema, row_group_size=3, compression="snappy")
    trl_bool = pa.schema([("prompt", pa.string()), ("completions", pa.list_(pa.string())), ("labels", pa.list_(pa.bool_()))])
    write("trl_bool", TRL_BOOL, trl_bool, row_group_size=2, compression="none")
    trl_float = pa.schema([("prompt", pa.string()), ("completions", pa.list_(pa.string())), ("labels", pa.list_(pa.float64()))])
    write("trl_float", TRL_FLOAT, trl_float, row_group_size=5, compression="gzip")
    write("trl_float_zstd", TRL_FLOAT, trl_float, row_group_size=2, compression="zstd")
    prmkit = pa.schema(
        [
            ("id", pa.string()),
            ("problem", pa.string()),
            ("steps", pa.list_(pa.string())),
            ("answer", pa.string()),
            ("labels", pa.list_(pa.float64())),
            ("firstError", pa.int32()),
            ("source", pa.string()),
            ("meta", pa.string()),
        ]
    )
    write("prmkit", PRMKIT, prmkit, row_group_size=2, compression="snappy")
    # The same TRL rows as Arrow IPC written by pyarrow (Feather v2 = the IPC file format).
    feather.write_feather(pa.Table.from_pylist(TRL_BOOL, schema=trl_bool), OUT / "trl_bool.feather", compression="uncompressed")
    print(f"wrote fixtures to {OUT}")


if __name__ == "__main__":
    main()
