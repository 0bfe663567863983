//! Loading, on all threads: each input is mapped and classified, an object parsed, an
//! archive split and its ELF members parsed ahead ([`load`]); the results are delivered in
//! command-line order ([`Arrivals`]) to the thread that resolves them (`archive.rs`).
//! Nothing here looks at symbols.

use crate::input::elf::{classify, ElfKind, ObjectFile};
use crate::input::search::FileSpec;
use crate::input::{map_file, Archive};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use std::sync::{Condvar, Mutex};

/// An input as loading leaves it.
pub(super) enum Loaded {
    Object {
        name: String,
        data: &'static [u8],
        parsed: Option<Result<ObjectFile>>,
    },
    Shared {
        name: String,
        /// Its DT_NEEDED name when it has no DT_SONAME.
        needed_name: String,
        data: &'static [u8],
        as_needed: bool,
    },
    Archive {
        archive: Archive,
        whole: bool,
        extracted: Vec<bool>,
        /// Each ELF member, parsed ahead (in parallel); taken when the member is added.
        parsed: Vec<Option<Result<ObjectFile>>>,
    },
}

/// Whether an archive member is something to link: an ELF file, or LLVM bitcode for the LTO
/// plugin (`ar` of `clang -flto` objects; rustc's `-Clinker-plugin-lto` staticlibs).
pub(super) fn is_object(member: &[u8]) -> bool {
    member.starts_with(b"\x7fELF") || crate::input::is_bitcode(member)
}

/// Starts loading every input on the pool's threads, in command-line order (FIFO tasks),
/// each delivered to `arrivals`; `members`: per input (by position), the archive members
/// expected to be used (see [`load`]).
pub(super) fn spawn<'s>(
    scope: &rayon::ScopeFifo<'s>,
    specs: &'s [FileSpec],
    members: Option<&'s HashMap<u32, Vec<u32>>>,
    arrivals: &'s Arrivals,
) {
    for (i, spec) in specs.iter().enumerate() {
        scope.spawn_fifo(move |_| {
            let wanted = members.map(|m| m.get(&(i as u32)).map_or(&[][..], |v| &v[..]));
            // A panic must still deliver something: the resolving thread waits for it.
            let item =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load(spec, wanted)))
                    .unwrap_or_else(|_| {
                        Err(anyhow::anyhow!(
                            "internal error while reading {}",
                            spec.path.display()
                        ))
                    });
            arrivals.deliver(i, item);
        });
    }
}

/// Maps and classifies one input; parses an object, or an archive and all its ELF members
/// (parsing every member on two threads costs less than parsing the needed ones on one,
/// measured on ripgrep: 464 members, 160 of them used) or, if `members` says which members
/// the link is expected to use (an incremental update knows), those; others are parsed if
/// they turn out to be needed.
fn load(spec: &FileSpec, members: Option<&[u32]>) -> Result<Loaded> {
    let data = map_file(&spec.path)?;
    let name = spec.path.display().to_string();
    if data.starts_with(b"!<arch>\n") || data.starts_with(b"!<thin>\n") {
        let archive = Archive::parse(&spec.path, data).with_context(|| name.clone())?;
        let n = archive.members.len();
        let parse = |m: &crate::input::ArchiveMember| {
            (m.data.starts_with(b"\x7fELF")
                && classify(m.data).is_ok_and(|k| k == ElfKind::Relocatable))
            .then(|| ObjectFile::parse(m.data))
        };
        let parsed = match members {
            None => archive
                .members
                .par_iter()
                .with_max_len(1)
                .map(parse)
                .collect(),
            Some(wanted) => {
                let mut parsed: Vec<Option<Result<ObjectFile>>> = (0..n).map(|_| None).collect();
                let done: Vec<(usize, Option<Result<ObjectFile>>)> = wanted
                    .par_iter()
                    .with_max_len(1)
                    .filter(|&&m| (m as usize) < n)
                    .map(|&m| (m as usize, parse(&archive.members[m as usize])))
                    .collect();
                for (m, p) in done {
                    parsed[m] = p;
                }
                parsed
            }
        };
        Ok(Loaded::Archive {
            archive,
            whole: spec.modifiers.whole_archive,
            extracted: vec![false; n],
            parsed,
        })
    } else if crate::input::is_bitcode(data) {
        Ok(Loaded::Object {
            name,
            data,
            parsed: None,
        })
    } else if data.starts_with(b"\x7fELF") {
        match classify(data).with_context(|| name.clone())? {
            ElfKind::Relocatable => Ok(Loaded::Object {
                name,
                data,
                parsed: Some(ObjectFile::parse(data)),
            }),
            ElfKind::Shared => Ok(Loaded::Shared {
                // DT_NEEDED for a library without DT_SONAME, as GNU ld names it: the file
                // name of one found by `-l`, the path as written of one named directly
                // (`cc dir/main.o dir/c.so` records `dir/c.so`).
                needed_name: match spec.origin.starts_with("-l") {
                    true => spec
                        .path
                        .file_name()
                        .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned()),
                    false => name.clone(),
                },
                name,
                data,
                as_needed: spec.modifiers.as_needed,
            }),
        }
    } else {
        bail!("{name}: unknown file type");
    }
}

/// Archive members parsed ahead but not used: their pages (headers, symbol and string
/// tables) will not be read again, and would count in the link's peak memory.
pub(super) fn release_unused(loaded: &[Loaded]) {
    for item in loaded {
        if let Loaded::Archive {
            archive, extracted, ..
        } = item
        {
            archive.release_unused(extracted);
        }
    }
}

/// Loaded inputs, by command-line position, as loading tasks deliver them.
pub(super) struct Arrivals {
    slots: Vec<Mutex<Option<Result<Loaded>>>>,
    /// Notified at each delivery.
    signal: (Mutex<()>, Condvar),
}

impl Arrivals {
    /// Slots for `n` inputs, none delivered yet.
    pub(super) fn new(n: usize) -> Arrivals {
        Arrivals {
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            signal: (Mutex::new(()), Condvar::new()),
        }
    }

    fn deliver(&self, i: usize, item: Result<Loaded>) {
        *lock(&self.slots[i]) = Some(item);
        let _guard = lock(&self.signal.0);
        self.signal.1.notify_all();
    }

    /// Input `i`, once loaded; meanwhile this thread runs other loading tasks.
    pub(super) fn take(&self, i: usize) -> Result<Loaded> {
        loop {
            if let Some(item) = lock(&self.slots[i]).take() {
                return item;
            }
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                continue;
            }
            // Nothing to run: input `i` is being loaded by another thread. The time-out
            // covers a delivery between the check above and the wait.
            let guard = lock(&self.signal.0);
            let _ = self
                .signal
                .1
                .wait_timeout(guard, std::time::Duration::from_micros(200));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
