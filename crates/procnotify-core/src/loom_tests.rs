//! Loom models of the table and the engine (being rewritten).
