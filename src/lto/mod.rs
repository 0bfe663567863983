//! Link-time optimisation through the linker plugin API (binutils `include/plugin-api.h`,
//! the interface GNU ld, gold, mold and lld's gold-compatible mode give GCC's
//! `liblto_plugin.so` and LLVM's `LLVMgold.so`).
//!
//! The link runs in two passes:
//! 1. inputs are resolved as usual, except that an object holding LTO intermediate code is
//!    offered to the plugin (`claim_file`); a claimed object's symbols, as the plugin lists
//!    them (`add_symbols`), stand in for it as a small ELF object weld makes
//!    ([`ir_object`]), so archive members are pulled in for IR references as for any other;
//! 2. the plugin is told how each IR symbol resolved (`get_symbols`) and compiles
//!    (`all_symbols_read`): it adds native objects (`add_input_file`) and libraries
//!    (`add_input_library`), and the inputs are resolved again with those in place of the
//!    claimed objects. The plugin's temporary files go at the end (`cleanup`).
//!
//! This module is the host (what `resolve` calls while it reads the inputs); [`compile`]
//! is the step between the passes.
//!
//! The plugin calls back through C functions with no context argument: the host state is a
//! process-wide [`Mutex`], never held while weld calls into the plugin (its callbacks take
//! it).

use crate::args::Config;
use crate::symbols::{Def, FileId};
use anyhow::{bail, Context, Result};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::Mutex;

pub mod compile;

// plugin-api.h: status codes, tags, symbol kinds and resolutions.
const LDPS_OK: c_int = 0;
const LDPS_NO_SYMS: c_int = 1;
const LDPS_BAD_HANDLE: c_int = 2;
const LDPS_ERR: c_int = 3;

const LDPT_NULL: c_int = 0;
const LDPT_API_VERSION: c_int = 1;
const LDPT_LINKER_OUTPUT: c_int = 3;
const LDPT_OPTION: c_int = 4;
const LDPT_REGISTER_CLAIM_FILE_HOOK: c_int = 5;
const LDPT_REGISTER_ALL_SYMBOLS_READ_HOOK: c_int = 6;
const LDPT_REGISTER_CLEANUP_HOOK: c_int = 7;
const LDPT_ADD_SYMBOLS: c_int = 8;
const LDPT_GET_SYMBOLS: c_int = 9;
const LDPT_ADD_INPUT_FILE: c_int = 10;
const LDPT_MESSAGE: c_int = 11;
const LDPT_GET_INPUT_FILE: c_int = 12;
const LDPT_RELEASE_INPUT_FILE: c_int = 13;
const LDPT_ADD_INPUT_LIBRARY: c_int = 14;
const LDPT_OUTPUT_NAME: c_int = 15;
const LDPT_SET_EXTRA_LIBRARY_PATH: c_int = 16;
const LDPT_GNU_LD_VERSION: c_int = 17;
const LDPT_GET_VIEW: c_int = 18;
const LDPT_GET_SYMBOLS_V2: c_int = 25;
const LDPT_GET_SYMBOLS_V3: c_int = 28;

const LDPO_EXEC: c_int = 1;
const LDPO_DYN: c_int = 2;
const LDPO_PIE: c_int = 3;

const LDPK_DEF: u8 = 0;
const LDPK_WEAKDEF: u8 = 1;
const LDPK_UNDEF: u8 = 2;
const LDPK_WEAKUNDEF: u8 = 3;
const LDPK_COMMON: u8 = 4;

const LDPR_UNDEF: c_int = 1;
const LDPR_PREVAILING_DEF: c_int = 2;
const LDPR_PREVAILING_DEF_IRONLY: c_int = 3;
const LDPR_PREEMPTED_REG: c_int = 4;
const LDPR_PREEMPTED_IR: c_int = 5;
const LDPR_RESOLVED_IR: c_int = 6;
const LDPR_RESOLVED_EXEC: c_int = 7;
const LDPR_RESOLVED_DYN: c_int = 8;
const LDPR_PREVAILING_DEF_IRONLY_EXP: c_int = 9;

const LDPL_ERROR: c_int = 2;

#[repr(C)]
struct InputFile {
    name: *const c_char,
    fd: c_int,
    offset: i64,
    filesize: i64,
    handle: *mut c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PluginSymbol {
    name: *mut c_char,
    version: *mut c_char,
    /// `def` in its low byte (newer headers split the int into def, symbol_type,
    /// section_kind and padding).
    def: c_int,
    visibility: c_int,
    size: u64,
    comdat_key: *mut c_char,
    resolution: c_int,
}

/// A transfer vector entry: the tag and a pointer-sized union.
#[repr(C)]
struct Tv {
    tag: c_int,
    value: usize,
}

type ClaimFile = unsafe extern "C" fn(*const InputFile, *mut c_int) -> c_int;
type Hook = unsafe extern "C" fn() -> c_int;
type Onload = unsafe extern "C" fn(*mut Tv) -> c_int;

/// A symbol of a claimed file, as the plugin listed it.
#[derive(Clone, Debug)]
pub struct IrSymbol {
    pub name: Vec<u8>,
    pub kind: u8,
    pub visibility: u8,
    pub size: u64,
    pub comdat: bool,
}

struct Claimed {
    /// The file the plugin reads it from (an archive for a member), and where in it.
    path: CString,
    offset: u64,
    data: &'static [u8],
    fd: c_int,
    symbols: Vec<IrSymbol>,
    /// Each symbol's resolution, once known.
    resolutions: Vec<c_int>,
}

#[derive(Default)]
struct Host {
    claim_hooks: Vec<ClaimFile>,
    all_read_hooks: Vec<Hook>,
    cleanup_hooks: Vec<Hook>,
    claimed: Vec<Claimed>,
    added_files: Vec<PathBuf>,
    added_libraries: Vec<String>,
    library_paths: Vec<PathBuf>,
    errors: Vec<String>,
    /// Set once `all_symbols_read` ran: IR objects are then left out of the link.
    done: bool,
}

static HOST: Mutex<Option<Host>> = Mutex::new(None);

fn with_host<T>(f: impl FnOnce(&mut Host) -> T) -> Option<T> {
    let mut guard = HOST.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().map(f)
}

fn handle_index(handle: *const c_void) -> Option<usize> {
    (handle as *const () as usize).checked_sub(1)
}

unsafe extern "C" fn register_claim_file(hook: ClaimFile) -> c_int {
    with_host(|h| h.claim_hooks.push(hook));
    LDPS_OK
}

unsafe extern "C" fn register_all_symbols_read(hook: Hook) -> c_int {
    with_host(|h| h.all_read_hooks.push(hook));
    LDPS_OK
}

unsafe extern "C" fn register_cleanup(hook: Hook) -> c_int {
    with_host(|h| h.cleanup_hooks.push(hook));
    LDPS_OK
}

/// Reads a C string the plugin passed; empty for null.
///
/// # Safety
/// `p` is null or points to a NUL-terminated string.
// SAFETY: (an unsafe fn: its callers uphold the contract above.)
unsafe fn c_bytes(p: *const c_char) -> Vec<u8> {
    if p.is_null() {
        return Vec::new();
    }
    // SAFETY: the caller's contract.
    unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()
}

unsafe extern "C" fn add_symbols(
    handle: *mut c_void,
    n: c_int,
    syms: *const PluginSymbol,
) -> c_int {
    let Some(index) = handle_index(handle) else {
        return LDPS_BAD_HANDLE;
    };
    let n = usize::try_from(n).unwrap_or(0);
    let symbols: Vec<IrSymbol> = (0..n)
        .map(|i| {
            // SAFETY: the plugin passes an array of `n` symbols with C strings.
            let s = unsafe { *syms.add(i) };
            let mut name = unsafe { c_bytes(s.name) };
            let version = unsafe { c_bytes(s.version) };
            if !version.is_empty() {
                name.extend_from_slice(b"@");
                name.extend_from_slice(&version);
            }
            IrSymbol {
                name,
                kind: (s.def & 0xff) as u8,
                visibility: s.visibility as u8,
                size: s.size,
                comdat: !s.comdat_key.is_null(),
            }
        })
        .collect();
    with_host(|h| match h.claimed.get_mut(index) {
        Some(c) => {
            c.symbols.extend(symbols);
            LDPS_OK
        }
        None => LDPS_BAD_HANDLE,
    })
    .unwrap_or(LDPS_ERR)
}

unsafe extern "C" fn get_symbols(
    handle: *const c_void,
    n: c_int,
    syms: *mut PluginSymbol,
) -> c_int {
    let Some(index) = handle_index(handle) else {
        return LDPS_BAD_HANDLE;
    };
    let resolutions = with_host(|h| h.claimed.get(index).map(|c| c.resolutions.clone())).flatten();
    let Some(resolutions) = resolutions else {
        return LDPS_BAD_HANDLE;
    };
    if resolutions.is_empty() && n > 0 {
        return LDPS_NO_SYMS;
    }
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: the plugin passes the array it gave `add_symbols`, `n` long.
        unsafe { (*syms.add(i)).resolution = resolutions.get(i).copied().unwrap_or(LDPR_UNDEF) };
    }
    LDPS_OK
}

unsafe extern "C" fn add_input_file(path: *const c_char) -> c_int {
    // SAFETY: a C string from the plugin.
    let path = unsafe { c_bytes(path) };
    let path = PathBuf::from(String::from_utf8_lossy(&path).into_owned());
    with_host(|h| h.added_files.push(path));
    LDPS_OK
}

unsafe extern "C" fn add_input_library(name: *const c_char) -> c_int {
    // SAFETY: a C string from the plugin.
    let name = String::from_utf8_lossy(&unsafe { c_bytes(name) }).into_owned();
    with_host(|h| h.added_libraries.push(name));
    LDPS_OK
}

unsafe extern "C" fn set_extra_library_path(path: *const c_char) -> c_int {
    // SAFETY: a C string from the plugin.
    let path = String::from_utf8_lossy(&unsafe { c_bytes(path) }).into_owned();
    with_host(|h| h.library_paths.push(path.into()));
    LDPS_OK
}

unsafe extern "C" fn get_input_file(handle: *const c_void, file: *mut InputFile) -> c_int {
    let Some(index) = handle_index(handle) else {
        return LDPS_BAD_HANDLE;
    };
    let info = with_host(|h| {
        h.claimed
            .get(index)
            .map(|c| (c.path.as_ptr(), c.fd, c.offset, c.data.len()))
    })
    .flatten();
    match info {
        Some((name, fd, offset, len)) => {
            // SAFETY: the plugin passes a struct to fill; the name lives as long as the host.
            unsafe {
                *file = InputFile {
                    name,
                    fd,
                    offset: offset as i64,
                    filesize: len as i64,
                    handle: handle as *mut c_void,
                };
            }
            LDPS_OK
        }
        None => LDPS_BAD_HANDLE,
    }
}

unsafe extern "C" fn release_input_file(_handle: *const c_void) -> c_int {
    LDPS_OK
}

unsafe extern "C" fn get_view(handle: *const c_void, view: *mut *const c_void) -> c_int {
    let Some(index) = handle_index(handle) else {
        return LDPS_BAD_HANDLE;
    };
    match with_host(|h| h.claimed.get(index).map(|c| c.data.as_ptr())).flatten() {
        Some(p) => {
            // SAFETY: the plugin passes a pointer to fill; the data is mapped for the link.
            unsafe { *view = p.cast() };
            LDPS_OK
        }
        None => LDPS_BAD_HANDLE,
    }
}

/// `message(level, format, ...)`: C-variadic, which stable Rust cannot define; the first
/// four variadic arguments arrive in registers as the next four integer arguments
/// (x86-64 SysV), and are read only where the format has a conversion for them.
unsafe extern "C" fn message(
    level: c_int,
    format: *const c_char,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
) -> c_int {
    // SAFETY: a C string from the plugin.
    let format = unsafe { c_bytes(format) };
    let args = [a, b, c, d];
    let mut text = Vec::new();
    let mut next = 0;
    let mut i = 0;
    while i < format.len() {
        if format[i] == b'%' && i + 1 < format.len() {
            let conv = format[i + 1];
            i += 2;
            match conv {
                b'%' => text.push(b'%'),
                b's' if next < args.len() => {
                    // SAFETY: the format says this argument is a C string.
                    text.extend(unsafe { c_bytes(args[next] as *const c_char) });
                    next += 1;
                }
                b'd' | b'i' | b'u' if next < args.len() => {
                    text.extend((args[next] as c_int).to_string().bytes());
                    next += 1;
                }
                _ => text.extend_from_slice(&[b'%', conv]),
            }
            continue;
        }
        text.push(format[i]);
        i += 1;
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    if level >= LDPL_ERROR {
        with_host(|h| h.errors.push(text));
    } else {
        crate::diag::warn(format_args!("LTO plugin: {text}"));
    }
    LDPS_OK
}

/// What loading the plugins takes from the command line.
struct PluginConfig {
    plugins: Vec<String>,
    options: Vec<String>,
    output: String,
    output_type: c_int,
}

static PENDING: Mutex<Option<PluginConfig>> = Mutex::new(None);

/// Notes the `-plugin`s: they are loaded when the first object with LTO code is met (GCC
/// passes its plugin to every link; most have no LTO code).
pub fn configure(config: &Config) {
    if config.plugins.is_empty() {
        return;
    }
    let output_type = if config.shared {
        LDPO_DYN
    } else if config.pie {
        LDPO_PIE
    } else {
        LDPO_EXEC
    };
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some(PluginConfig {
        plugins: config.plugins.clone(),
        options: config.plugin_opts.clone(),
        output: config.output.to_string_lossy().into_owned(),
        output_type,
    });
}

/// Loads the plugins and runs their `onload`, once.
fn load() -> Result<()> {
    let Some(config) = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return Ok(());
    };
    *HOST.lock().unwrap_or_else(|e| e.into_inner()) = Some(Host::default());
    let output_type = config.output_type;
    // Strings the plugin may keep: they live for the process.
    let keep = |s: &str| -> usize { CString::new(s).unwrap_or_default().into_raw() as usize };
    let mut tv: Vec<Tv> = vec![
        Tv {
            tag: LDPT_API_VERSION,
            value: 1,
        },
        Tv {
            tag: LDPT_GNU_LD_VERSION,
            value: 240,
        },
        Tv {
            tag: LDPT_LINKER_OUTPUT,
            value: output_type as usize,
        },
        Tv {
            tag: LDPT_OUTPUT_NAME,
            value: keep(&config.output),
        },
    ];
    for opt in &config.options {
        tv.push(Tv {
            tag: LDPT_OPTION,
            value: keep(opt),
        });
    }
    let callbacks: [(c_int, usize); 13] = [
        (
            LDPT_REGISTER_CLAIM_FILE_HOOK,
            register_claim_file as *const () as usize,
        ),
        (
            LDPT_REGISTER_ALL_SYMBOLS_READ_HOOK,
            register_all_symbols_read as *const () as usize,
        ),
        (
            LDPT_REGISTER_CLEANUP_HOOK,
            register_cleanup as *const () as usize,
        ),
        (LDPT_ADD_SYMBOLS, add_symbols as *const () as usize),
        (LDPT_GET_SYMBOLS, get_symbols as *const () as usize),
        (LDPT_GET_SYMBOLS_V2, get_symbols as *const () as usize),
        (LDPT_GET_SYMBOLS_V3, get_symbols as *const () as usize),
        (LDPT_ADD_INPUT_FILE, add_input_file as *const () as usize),
        (
            LDPT_ADD_INPUT_LIBRARY,
            add_input_library as *const () as usize,
        ),
        (
            LDPT_SET_EXTRA_LIBRARY_PATH,
            set_extra_library_path as *const () as usize,
        ),
        (LDPT_MESSAGE, message as *const () as usize),
        (LDPT_GET_INPUT_FILE, get_input_file as *const () as usize),
        (LDPT_GET_VIEW, get_view as *const () as usize),
    ];
    tv.extend(callbacks.iter().map(|&(tag, value)| Tv { tag, value }));
    tv.push(Tv {
        tag: LDPT_RELEASE_INPUT_FILE,
        value: release_input_file as *const () as usize,
    });
    tv.push(Tv {
        tag: LDPT_NULL,
        value: 0,
    });
    let tv: &'static mut [Tv] = tv.leak();
    for plugin in &config.plugins {
        let path = CString::new(plugin.as_str()).context("plugin path")?;
        // SAFETY: dlopen of the plugin the command line names, as every linker does; its
        // code runs in this process from here on.
        let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
        if lib.is_null() {
            // SAFETY: dlerror returns a C string or null.
            let why = unsafe { c_bytes(libc::dlerror()) };
            bail!(
                "{plugin}: cannot load LTO plugin: {}",
                String::from_utf8_lossy(&why)
            );
        }
        // SAFETY: looking up the plugin's entry point by its documented name.
        let onload = unsafe { libc::dlsym(lib, c"onload".as_ptr()) };
        if onload.is_null() {
            bail!("{plugin}: not an LTO plugin (no onload)");
        }
        // SAFETY: `onload` has the plugin API's entry point type; the transfer vector ends
        // with LDPT_NULL and lives for the process.
        let status = unsafe {
            let onload: Onload = std::mem::transmute::<*mut c_void, Onload>(onload);
            onload(tv.as_mut_ptr())
        };
        if status != LDPS_OK {
            bail!("{plugin}: the LTO plugin failed to load (status {status})");
        }
    }
    Ok(())
}

/// Whether there is a plugin that has not compiled yet: IR objects are offered to it
/// (loading it now if this is the first).
pub fn claiming() -> Result<bool> {
    load()?;
    Ok(with_host(|h| !h.done && !h.claim_hooks.is_empty()).unwrap_or(false))
}

/// Whether the plugin compiled `data` (a claimed object): it is left out of the link now.
pub fn compiled(data: &[u8]) -> bool {
    if !with_host(|h| h.done).unwrap_or(false) {
        return false;
    }
    // (The second pass maps the inputs again: the same file and offset.)
    let Some((path, offset)) = crate::input::source_of(data) else {
        return false;
    };
    let path = CString::new(path.to_string_lossy().into_owned()).unwrap_or_default();
    with_host(|h| {
        h.claimed
            .iter()
            .any(|c| c.path == path && c.offset == offset)
    })
    .unwrap_or(false)
}

/// Offers an object with LTO code to the plugin. `Some((handle, symbols as an ELF object))`
/// if claimed.
pub fn claim(name: &str, data: &'static [u8]) -> Result<Option<(usize, Vec<u8>)>> {
    let Some((path, offset)) = crate::input::source_of(data) else {
        return Ok(None);
    };
    let path_c = CString::new(path.to_string_lossy().into_owned()).context("input path")?;
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
    let (index, hooks) = with_host(|h| {
        h.claimed.push(Claimed {
            path: path_c.clone(),
            offset,
            data,
            fd,
            symbols: Vec::new(),
            resolutions: Vec::new(),
        });
        (h.claimed.len() - 1, h.claim_hooks.clone())
    })
    .context("no LTO plugin")?;
    let input = InputFile {
        name: path_c.as_ptr(),
        fd,
        offset: offset as i64,
        filesize: data.len() as i64,
        handle: (index + 1) as *mut c_void,
    };
    let mut claimed: c_int = 0;
    for hook in hooks {
        // SAFETY: the plugin's claim_file hook, given a valid input description.
        let status = unsafe { hook(&input, &mut claimed) };
        if status != LDPS_OK {
            let errors = with_host(|h| std::mem::take(&mut h.errors)).unwrap_or_default();
            bail!(
                "{name}: the LTO plugin failed to read it: {}",
                errors.join("; ")
            );
        }
        if claimed != 0 {
            break;
        }
    }
    if claimed == 0 {
        return Ok(None);
    }
    let symbols = with_host(|h| h.claimed[index].symbols.clone()).unwrap_or_default();
    Ok(Some((index, ir_object(&symbols))))
}

/// A relocatable ELF object with `symbols` (in order, all global): definitions in one empty
/// section (those of COMDAT groups weak, so that copies in several files do not clash),
/// commons as commons, references undefined. It stands in for a claimed file while inputs
/// are resolved.
pub fn ir_object(symbols: &[IrSymbol]) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for s in symbols {
        let name = strtab.len() as u32;
        strtab.extend_from_slice(&s.name);
        strtab.push(0);
        let (bind, shndx, value, size) = match s.kind {
            LDPK_DEF if !s.comdat => (1u8, 1u16, 0u64, s.size),
            LDPK_DEF | LDPK_WEAKDEF => (2, 1, 0, s.size),
            LDPK_WEAKUNDEF => (2, 0, 0, 0),
            LDPK_COMMON => (1, 0xfff2, 8, s.size.max(1)),
            LDPK_UNDEF => (1, 0, 0, 0),
            _ => (1, 0, 0, 0),
        };
        symtab.extend_from_slice(&name.to_le_bytes());
        symtab.push(bind << 4);
        symtab.push(match s.visibility {
            1 => 3, // protected
            2 => 1, // internal
            3 => 2, // hidden
            _ => 0,
        });
        symtab.extend_from_slice(&shndx.to_le_bytes());
        symtab.extend_from_slice(&value.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
    }
    let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0";
    let symtab_off = 64u64;
    let strtab_off = symtab_off + symtab.len() as u64;
    let shstrtab_off = strtab_off + strtab.len() as u64;
    let shoff = (shstrtab_off + shstrtab.len() as u64).next_multiple_of(8);
    let mut out = Vec::with_capacity(shoff as usize + 5 * 64);
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
    out.extend_from_slice(&<crate::arch::Current as crate::arch::Arch>::E_MACHINE.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // entry
    out.extend_from_slice(&0u64.to_le_bytes()); // phoff
    out.extend_from_slice(&shoff.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 0, 0, 64, 5, 4] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab);
    out.extend_from_slice(shstrtab);
    out.resize(shoff as usize, 0);
    let headers = [
        (0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 1, 6, 64, 0, 0, 0, 1, 0), // .text, empty
        (7, 2, 0, symtab_off, symtab.len() as u64, 3, 1, 8, 24),
        (15, 3, 0, strtab_off, strtab.len() as u64, 0, 0, 1, 0),
        (23, 3, 0, shstrtab_off, shstrtab.len() as u64, 0, 0, 1, 0),
    ];
    for (name, sh_type, flags, offset, size, link, info, align, entsize) in headers {
        out.extend_from_slice(&crate::encode::section_header(
            name, sh_type, flags, 0, offset, size, link, info, align, entsize,
        ));
    }
    out
}

/// Runs the plugins' cleanup hooks (they remove their temporary files) and closes the
/// claimed files.
pub fn cleanup() {
    let Some((hooks, fds)) = with_host(|h| {
        (
            std::mem::take(&mut h.cleanup_hooks),
            h.claimed.iter().map(|c| c.fd).collect::<Vec<_>>(),
        )
    }) else {
        return;
    };
    for hook in hooks {
        // SAFETY: the plugin's cleanup hook.
        unsafe { hook() };
    }
    for fd in fds {
        // SAFETY: descriptors this module opened for the plugin.
        unsafe { libc::close(fd) };
    }
}
