//! Reading: query streams, tie-safe cursor reads, row builders that keep rows whole.
