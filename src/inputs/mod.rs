//! Phase 1: inputs. Finds, maps and classifies input files.

pub mod search;
