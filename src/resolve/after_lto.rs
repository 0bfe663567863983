//! The second resolution of an LTO link ([`resolve_after_lto`]): the plugin's objects take
//! the place of the IR ones, and the archive members the first resolution extracted stay in
//! (`extract`), as GNU ld keeps them. Everything else is the first resolution's code, run
//! again.

use super::load::Loaded;
use super::{resolve_with, IncrementalHooks, Resolution, Resolver};
use crate::args::Config;
use crate::input::search::FileSpec;
use anyhow::Result;
use rustc_hash::FxHashMap as HashMap;

/// The second resolution of an LTO link, with the plugin's objects at the end of `specs`
/// and the claimed files left out: as GNU ld does, the archive members the first
/// resolution (`first`) extracted stay in, at their archive's place, even those that only
/// IR code wanted; then the archives are searched again for what the plugin's objects
/// refer to.
pub fn resolve_after_lto(
    config: &Config,
    specs: &[FileSpec],
    first: &Resolution,
) -> Result<Resolution> {
    let ir: rustc_hash::FxHashSet<u32> = first.ir_files.iter().map(|&(f, _)| f.0).collect();
    let mut kept: HashMap<u32, Vec<u32>> = HashMap::default();
    for (f, object) in first.objects.iter().enumerate() {
        let (input, member) = object.origin;
        if member != u32::MAX && !ir.contains(&(f as u32)) {
            kept.entry(input).or_default().push(member);
        }
    }
    for members in kept.values_mut() {
        members.sort_unstable();
    }
    resolve_with(config, specs, IncrementalHooks::default(), Some(&kept))
}

impl Resolver {
    /// Extracts the given members of an archive (those an LTO link's first resolution
    /// extracted), in archive order.
    pub(super) fn extract(&mut self, item: &mut Loaded, members: &[u32]) -> Result<()> {
        let Loaded::Archive {
            archive,
            extracted,
            parsed,
            ..
        } = item
        else {
            return Ok(());
        };
        for &m in members {
            let Some(done) = extracted.get_mut(m as usize) else {
                continue;
            };
            if std::mem::replace(done, true) {
                continue;
            }
            let parsed = parsed[m as usize].take();
            let data = archive.members[m as usize].data;
            self.add_member(archive.member_name(m as usize), data, m, parsed)?;
        }
        Ok(())
    }
}
