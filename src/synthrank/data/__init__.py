"""Data layer: typed records, BEIR/TREC/JSONL readers and writers, validation, statistics."""

from synthrank.data.beir import (
    BeirDataset,
    iter_corpus,
    load_beir_folder,
    load_corpus,
    load_qrels_tsv,
    load_queries,
    write_qrels_tsv,
)
from synthrank.data.embedded import embedded_dataset_path
from synthrank.data.errors import DataFormatError
from synthrank.data.jsonl import atomic_write, write_jsonl
from synthrank.data.records import Document, Qrels, Query, Run
from synthrank.data.stats import beir_folder_stats
from synthrank.data.trec import load_trec_qrels, load_trec_run, write_trec_qrels, write_trec_run
from synthrank.data.validate import validate_beir_folder

__all__ = [
    "BeirDataset", "DataFormatError", "Document", "Qrels", "Query", "Run",
    "atomic_write", "beir_folder_stats", "embedded_dataset_path", "iter_corpus", "load_beir_folder",
    "load_corpus", "load_qrels_tsv", "load_queries", "load_trec_qrels", "load_trec_run",
    "validate_beir_folder", "write_jsonl", "write_qrels_tsv", "write_trec_qrels", "write_trec_run",
]
