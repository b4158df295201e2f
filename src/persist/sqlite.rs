//! SQLite persistence (issue 9: TinyBase's JSON layout and the incremental layout).
