//! Writing: staged overwrite and swap, upsert through a temp table, additive evolution.
