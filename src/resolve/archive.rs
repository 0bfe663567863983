//! The serial walk over the inputs in command-line order, each taken as it arrives from
//! loading (`resolve_loaded`): objects, shared objects and `--whole-archive` archives are
//! added as they come (`load_eagerly`); an archive's members are extracted when they define
//! a symbol wanted so far (`scan_archive`). GNU ld's rule: an archive serves only the
//! references seen before it, except within a group (`--start-group`, `GROUP`), which is
//! rescanned until nothing new is pulled. What adding a file means is `object.rs`'s,
//! `rules.rs`'s and `shared.rs`'s.

use super::load::{is_object, Arrivals, Loaded};
use super::Resolver;
use crate::args::Config;
use crate::input::search::FileSpec;
use anyhow::{bail, Result};
use rustc_hash::FxHashMap as HashMap;

/// Resolution proper, serial: inputs in command-line order, as they arrive.
pub(super) fn resolve_loaded(
    config: &Config,
    specs: &[FileSpec],
    arrivals: &Arrivals,
    kept: Option<&HashMap<u32, Vec<u32>>>,
) -> Result<(Resolver, Vec<Loaded>)> {
    let mut state = Resolver::new(config);
    let mut loaded: Vec<Loaded> = Vec::with_capacity(specs.len());
    let mut i = 0;
    while i < specs.len() {
        let group = specs[i].group;
        let mut end = i + 1;
        if group.is_some() {
            while end < specs.len() && specs[end].group == group {
                end += 1;
            }
        }
        while loaded.len() < end {
            loaded.push(arrivals.take(loaded.len())?);
        }
        // Objects and whole archives first, in order; then scan the archives until no member
        // is added (a single archive outside a group is scanned the same way).
        for (k, item) in loaded[i..end].iter_mut().enumerate() {
            state.input = (i + k) as u32;
            state.load_eagerly(item)?;
            if let Some(members) = kept.and_then(|kept| kept.get(&state.input)) {
                state.extract(item, members)?;
            }
        }
        state.scan_archives(&mut loaded[i..end], i, end - i > 1)?;
        i = end;
    }
    if kept.is_some() {
        // After LTO, GNU ld searches every archive again for the references of the
        // plugin's objects (libcalls the code generator introduced, say).
        state.scan_archives(&mut loaded, 0, true)?;
    }
    Ok((state, loaded))
}

impl Resolver {
    /// Adds an input linked whole: an object, a shared object, each object of a
    /// `--whole-archive` archive. Another archive waits for `scan_archive`.
    fn load_eagerly(&mut self, item: &mut Loaded) -> Result<()> {
        match item {
            Loaded::Object { name, data, parsed } => {
                self.add_object(std::mem::take(name), data, u32::MAX, parsed.take())
            }
            Loaded::Shared {
                name,
                needed_name,
                data,
                as_needed,
            } => self.add_shared(name, needed_name, data, *as_needed),
            Loaded::Archive {
                archive,
                whole: true,
                extracted,
                parsed,
            } => {
                for (m, member) in archive.members.iter().enumerate() {
                    if !is_object(member.data) {
                        continue; // rlib metadata and the like
                    }
                    extracted[m] = true;
                    let parsed = parsed[m].take();
                    if let Some(why) = &mut self.why_extract {
                        let record = (
                            "--whole-archive".into(),
                            archive.member_name(m),
                            String::new(),
                        );
                        why.records.push(record);
                    }
                    self.add_member(archive.member_name(m), member.data, m as u32, parsed)?;
                }
                Ok(())
            }
            Loaded::Archive { .. } => Ok(()),
        }
    }

    /// Scans the archives among `items` (inputs `first..`, in order) once, or with `repeat`
    /// until a pass extracts nothing.
    fn scan_archives(&mut self, items: &mut [Loaded], first: usize, repeat: bool) -> Result<()> {
        loop {
            let mut progress = false;
            for (k, item) in items.iter_mut().enumerate() {
                self.input = (first + k) as u32;
                progress |= self.scan_archive(item)?;
            }
            if !progress || !repeat {
                return Ok(());
            }
        }
    }

    /// Extracts members of one archive that define wanted symbols, repeatedly. Returns whether
    /// anything was extracted.
    fn scan_archive(&mut self, item: &mut Loaded) -> Result<bool> {
        let Loaded::Archive {
            archive,
            whole: false,
            extracted,
            parsed,
        } = item
        else {
            return Ok(false);
        };
        let mut any = false;
        loop {
            let mut progress = false;
            for &(name, m, hash) in &archive.index {
                if extracted[m as usize] || !self.symbols.wants(name, hash) {
                    continue;
                }
                extracted[m as usize] = true;
                let member = &archive.members[m as usize];
                if !is_object(member.data) {
                    bail!(
                        "{}: archive member is not an ELF object",
                        archive.member_name(m as usize)
                    );
                }
                let parsed = parsed[m as usize].take();
                if let Some(why) = &mut self.why_extract {
                    let referrer = self
                        .symbols
                        .lookup(name)
                        .and_then(|id| why.referrer.get(&id).cloned())
                        .unwrap_or_default();
                    let symbol = crate::symbols::demangle(name);
                    why.records
                        .push((referrer, archive.member_name(m as usize), symbol));
                }
                self.add_member(archive.member_name(m as usize), member.data, m, parsed)?;
                progress = true;
            }
            if !progress {
                return Ok(any);
            }
            any = true;
        }
    }
}
