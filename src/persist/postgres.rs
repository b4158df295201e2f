//! PostgreSQL persistence (issue 9: the incremental layout, rooms as keys).
