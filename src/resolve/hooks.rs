//! What incremental linking asks of a resolution ([`IncrementalHooks`]): which archive
//! members to parse ahead, and a hash of each archive's symbol index. `crate::incremental`
//! provides both; resolution knows nothing else of incremental mode.

use super::load::Loaded;
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

/// What incremental linking asks of a resolution (`crate::incremental` provides both).
#[derive(Clone, Copy, Default)]
pub struct IncrementalHooks<'a> {
    /// The archive members the link is expected to use, by input position: parsed ahead,
    /// others only when they turn out to be needed.
    pub members: Option<&'a HashMap<u32, Vec<u32>>>,
    /// A hash of an archive's symbol index, recorded per input in `Resolution::armaps`.
    pub armap_hash: Option<fn(&crate::input::Archive) -> u64>,
}

impl IncrementalHooks<'_> {
    /// `Resolution::armaps`: per input, the hash of an archive's symbol index, 0 for other
    /// inputs; empty without `armap_hash`.
    pub(super) fn armaps(&self, loaded: &[Loaded]) -> Vec<u64> {
        match self.armap_hash {
            Some(armap_hash) => loaded
                .par_iter()
                .map(|item| match item {
                    Loaded::Archive { archive, .. } => armap_hash(archive),
                    _ => 0,
                })
                .collect(),
            None => Vec::new(),
        }
    }
}
