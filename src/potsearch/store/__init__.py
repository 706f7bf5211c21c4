"""SQLite run store: the durable record of a run, and the only code that speaks SQL.

``runs`` holds the store itself (samples, states, events, checkpoints, stage results, the writer
lock); ``candidates`` owns the candidates table (``CandidateStore``); ``faults`` damages a store on
purpose for the fault tests; ``rundir`` owns the run folder's paths and files (RUN/).
"""
from potsearch.store.candidates import CandidateRow, CandidateStore, pareto_front
from potsearch.store.rundir import STORE_FILENAME
from potsearch.store.runs import APP_ID, ESCAPE, SCHEMA_VERSION, Counts, RunStore, Sample, run_dir_of, run_lock

__all__ = ["APP_ID", "ESCAPE", "SCHEMA_VERSION", "STORE_FILENAME", "CandidateRow", "CandidateStore", "Counts",
           "RunStore", "Sample", "pareto_front", "run_dir_of", "run_lock"]
