//! The step between an LTO link's two resolutions: each IR symbol's resolution, as the
//! plugin API defines them, handed to the plugin, which then compiles.

use super::*;
use crate::resolve::Resolution;

/// What the plugin added when it compiled.
pub struct Compiled {
    pub files: Vec<PathBuf>,
    pub libraries: Vec<String>,
    /// Directories to search for `libraries` first.
    pub dirs: Vec<PathBuf>,
}

/// After the first pass: tells the plugin how every IR symbol resolved, lets it compile,
/// and returns the objects and libraries it added (`None` if nothing was claimed).
pub fn compile(config: &Config, res: &Resolution) -> Result<Option<Compiled>> {
    if res.ir_files.is_empty() {
        return Ok(None);
    }
    let ir: rustc_hash::FxHashSet<FileId> = res.ir_files.iter().map(|&(f, _)| f).collect();
    // Symbols a regular object, a shared object or the command line refers to.
    let mut regular_ref = vec![false; res.symbols.symbols.len()];
    for (f, object) in res.objects.iter().enumerate() {
        if ir.contains(&FileId(f as u32)) {
            continue;
        }
        for (i, &id) in object.global_ids.iter().enumerate() {
            if object.obj.symbol_shndx(object.obj.first_global + i) == 0 {
                regular_ref[id.0 as usize] = true;
            }
        }
    }
    // (A shared object's references count; its definitions do not: an IR definition of a
    // symbol a library also defines, such as an inline C++ function, stays the IR's.)
    for dso in &res.dsos {
        for name in &dso.dso.undefined {
            if let Some(id) = res.symbols.lookup(name) {
                regular_ref[id.0 as usize] = true;
            }
        }
    }
    let entry = config.entry.as_deref().unwrap_or("_start");
    for name in std::iter::once(entry).chain(config.undefined.iter().map(String::as_str)) {
        if let Some(id) = res.symbols.lookup(name.as_bytes()) {
            regular_ref[id.0 as usize] = true;
        }
    }
    let exported = config.shared || config.export_dynamic;
    let mut tables = Vec::new();
    for &(file, handle) in &res.ir_files {
        let object = &res.objects[file.0 as usize];
        let symbols = with_host(|h| h.claimed[handle].symbols.clone()).unwrap_or_default();
        let resolutions: Vec<c_int> = symbols
            .iter()
            .zip(&object.global_ids)
            .map(|(s, &id)| {
                let defines = matches!(s.kind, LDPK_DEF | LDPK_WEAKDEF | LDPK_COMMON);
                let by_ir = |f: FileId| ir.contains(&f);
                match res.symbols.get(id).def {
                    Def::Defined { file: f, .. } | Def::Common { file: f, .. } => {
                        match (defines, f == file) {
                            (true, true) if regular_ref[id.0 as usize] => LDPR_PREVAILING_DEF,
                            (true, true) if exported && s.visibility == 0 => {
                                LDPR_PREVAILING_DEF_IRONLY_EXP
                            }
                            (true, true) => LDPR_PREVAILING_DEF_IRONLY,
                            (true, false) if by_ir(f) => LDPR_PREEMPTED_IR,
                            (true, false) => LDPR_PREEMPTED_REG,
                            (false, _) if by_ir(f) => LDPR_RESOLVED_IR,
                            (false, _) => LDPR_RESOLVED_EXEC,
                        }
                    }
                    Def::Shared { .. } if defines => LDPR_PREVAILING_DEF,
                    Def::Shared { .. } => LDPR_RESOLVED_DYN,
                    Def::Synthetic => LDPR_RESOLVED_EXEC,
                    Def::Undefined if defines => LDPR_PREVAILING_DEF,
                    Def::Undefined => LDPR_UNDEF,
                }
            })
            .collect();
        tables.push((handle, resolutions));
    }
    let hooks = with_host(|h| {
        for (handle, resolutions) in tables {
            h.claimed[handle].resolutions = resolutions;
        }
        h.done = true;
        h.all_read_hooks.clone()
    })
    .unwrap_or_default();
    for hook in hooks {
        // SAFETY: the plugin's all_symbols_read hook; its callbacks take the host lock,
        // which is not held here.
        let status = unsafe { hook() };
        let errors = with_host(|h| std::mem::take(&mut h.errors)).unwrap_or_default();
        if status != LDPS_OK || !errors.is_empty() {
            bail!(
                "LTO failed: {}",
                if errors.is_empty() {
                    format!("plugin status {status}")
                } else {
                    errors.join("\n")
                }
            );
        }
    }
    Ok(with_host(|h| Compiled {
        files: std::mem::take(&mut h.added_files),
        libraries: std::mem::take(&mut h.added_libraries),
        dirs: std::mem::take(&mut h.library_paths),
    }))
}
